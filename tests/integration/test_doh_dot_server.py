"""Server block keys `https://` (DNS over HTTPS, RFC 8484) and `tls://` (DNS over TLS, RFC 7858):
real listeners on loopback, a certificate from a throwaway trustme CA, and independent clients
(aiohttp for DoH, dnspython for DoT) that verify it."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest
import trustme

from kdns import cli
from kdns.config import from_text
from tests.support.client import DIG, dig, make_query, rrs
from tests.support.server import running_kdns

MIME = "application/dns-message"
NAME = "dns.example.test"
HOSTS = " hosts {\n  192.0.2.1 www.example.test\n }\n"


def certificate(directory: Path) -> ssl.SSLContext:
    """cert.pem and key.pem for NAME and 127.0.0.1, the CA in ca.pem; the client context that
    trusts them."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    leaf = ca.issue_cert(NAME, "127.0.0.1")
    (directory / "cert.pem").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(directory / "key.pem"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return client


def wire(qname: str) -> bytes:
    return make_query(qname).to_wire()


async def test_doh_server_answers_post_and_get_over_verified_tls(tmp_path: Path) -> None:
    trust = certificate(tmp_path)
    text = f"https://.:PORT {{\n bind 127.0.0.1\n tls cert.pem key.pem\n{HOSTS}}}\n"
    async with running_kdns(text, tmp_path) as srv:
        url = f"https://127.0.0.1:{srv.port}/dns-query"
        connector = aiohttp.TCPConnector(ssl=trust)
        async with aiohttp.ClientSession(connector=connector) as http:
            headers = {"Content-Type": MIME, "Accept": MIME}
            async with http.post(url, data=wire("www.example.test."), headers=headers) as resp:
                assert resp.status == 200
                assert resp.content_type == MIME
                assert resp.headers["Cache-Control"] == "max-age=3600"
                post = dns.message.from_wire(await resp.read())
            b64 = base64.urlsafe_b64encode(wire("www.example.test.")).rstrip(b"=").decode()
            async with http.get(url, params={"dns": b64}) as resp:
                assert resp.status == 200
                get = dns.message.from_wire(await resp.read())
            async with http.get(url) as resp:
                assert resp.status == 400  # no dns parameter
            async with http.post(url.replace("/dns-query", "/other"), data=b"x") as resp:
                assert resp.status == 404
            async with http.post(url, data=b"not dns") as resp:
                assert resp.status == 400
        for msg in (post, get):
            assert msg.rcode() == dns.rcode.NOERROR
            assert [r[2] for r in rrs(msg)] == ["192.0.2.1"]
        sample = srv.registry.get_sample_value(
            "coredns_dns_https_responses_total",
            {"server": f"https://127.0.0.1:{srv.port}", "status": "200"},
        )
        assert sample == 2


async def test_doh_server_refuses_a_client_that_does_not_trust_it(tmp_path: Path) -> None:
    certificate(tmp_path)
    text = f"https://.:PORT {{\n bind 127.0.0.1\n tls cert.pem key.pem\n{HOSTS}}}\n"
    async with running_kdns(text, tmp_path) as srv, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.post(f"https://127.0.0.1:{srv.port}/dns-query", data=wire("a.test."))


async def test_https_block_without_tls_serves_plain_http(tmp_path: Path) -> None:
    text = f"https://.:PORT {{\n bind 127.0.0.1\n{HOSTS}}}\n"
    async with running_kdns(text, tmp_path) as srv, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{srv.port}/dns-query"
        async with http.post(
            url, data=wire("nope.example.test."), headers={"Content-Type": MIME}
        ) as resp:
            assert resp.status == 200
            msg = dns.message.from_wire(await resp.read())
        assert msg.question[0].name.to_text() == "nope.example.test."
        async with http.post(url, data=wire("www.example.test.")) as resp:
            assert [r[2] for r in rrs(dns.message.from_wire(await resp.read()))] == ["192.0.2.1"]


async def test_dot_server_answers_dnspython_over_verified_tls(tmp_path: Path) -> None:
    trust = certificate(tmp_path)
    text = f"tls://.:PORT {{\n bind 127.0.0.1\n tls cert.pem key.pem\n{HOSTS}}}\n"
    async with running_kdns(text, tmp_path) as srv:
        for qname in ("www.example.test.", "www.example.test."):
            msg = await dns.asyncquery.tls(
                make_query(qname),
                "127.0.0.1",
                port=srv.port,
                timeout=3,
                ssl_context=trust,
                server_hostname=NAME,
            )
            assert [r[2] for r in rrs(msg)] == ["192.0.2.1"]
        with pytest.raises(ssl.SSLError):
            await dns.asyncquery.tls(
                make_query("www.example.test."),
                "127.0.0.1",
                port=srv.port,
                timeout=3,
                ssl_context=trust,
                server_hostname="wrong.example.test",
            )
        # A reload with the same transport and certificate keeps the listener.
        key = ("127.0.0.1", srv.port)
        before = srv.app.listeners[key]
        await srv.app.activate(
            from_text(srv.corefile.read_text().replace("192.0.2.1", "192.0.2.2"), str(srv.corefile))
        )
        assert srv.app.listeners[key] is before
        msg = await dns.asyncquery.tls(
            make_query("www.example.test."),
            "127.0.0.1",
            port=srv.port,
            timeout=3,
            ssl_context=trust,
            server_hostname=NAME,
        )
        assert [r[2] for r in rrs(msg)] == ["192.0.2.2"]


@pytest.mark.skipif(DIG is None, reason="dig is installed by `make test`")
async def test_dot_server_answers_dig(tmp_path: Path) -> None:
    certificate(tmp_path)
    text = f"tls://.:PORT {{\n bind 127.0.0.1\n tls cert.pem key.pem\n{HOSTS}}}\n"
    async with running_kdns(text, tmp_path) as srv:
        ca, name = f"+tls-ca={tmp_path / 'ca.pem'}", f"+tls-hostname={NAME}"
        out = await dig(srv.port, "+tls", ca, name, "+short", "www.example.test", "A")
        assert out.split() == ["192.0.2.1"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("tls://.:8853 {\n whoami\n}\n", "Corefile:1: tls://.:8853 serves DNS over TLS and needs"),
        ("tls://.:8853 {\n tls missing.pem key.pem\n}\n", "Corefile:2: tls: cannot load"),
        ("https://. {\n tls a b {\n  client_auth sometimes\n }\n}\n", "unknown authentication"),
        (".:8853 {\n whoami\n}\nhttps://example.org:8853 {\n whoami\n}\n", "one port cannot"),
    ],
)
def test_bad_tls_setups_are_refused_with_their_line(
    block: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Corefile"
    path.write_text(block)
    assert cli.main(["check", "--conf", str(path)]) == 1
    assert message in capsys.readouterr().err


async def test_client_auth_require_and_verify_needs_a_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(NAME)
    (tmp_path / "cert.pem").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = " tls cert.pem key.pem ca.pem {\n  client_auth require_and_verify\n }\n"
    text = f"tls://.:PORT {{\n bind 127.0.0.1\n{tls}{HOSTS}}}\n"
    async with running_kdns(text, tmp_path) as srv:
        anonymous = ssl.create_default_context()
        ca.configure_trust(anonymous)
        with pytest.raises((ssl.SSLError, ConnectionError, EOFError, dns.exception.Timeout)):
            await dns.asyncquery.tls(
                make_query("www.example.test."),
                "127.0.0.1",
                port=srv.port,
                timeout=3,
                ssl_context=anonymous,
                server_hostname=NAME,
            )
        known = ssl.create_default_context()
        ca.configure_trust(known)
        ca.issue_cert("client.example.test").configure_cert(known)
        msg = await dns.asyncquery.tls(
            make_query("www.example.test."),
            "127.0.0.1",
            port=srv.port,
            timeout=3,
            ssl_context=known,
            server_hostname=NAME,
        )
        assert [r[2] for r in rrs(msg)] == ["192.0.2.1"]


async def test_a_reload_after_the_certificate_changed_serves_the_new_one(tmp_path: Path) -> None:
    old_trust = certificate(tmp_path)
    text = f"https://.:PORT {{\n bind 127.0.0.1\n tls cert.pem key.pem\n{HOSTS}}}\n"
    async with running_kdns(text, tmp_path) as srv:
        url = f"https://127.0.0.1:{srv.port}/dns-query"
        key = ("127.0.0.1", srv.port)
        before = srv.app.listeners[key]
        new_trust = certificate(tmp_path)  # a renewed certificate from another CA
        await srv.app.activate(from_text(srv.corefile.read_text(), str(srv.corefile)))
        assert srv.app.listeners[key] is not before
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=new_trust)) as http,
            http.post(url, data=wire("www.example.test.")) as resp,
        ):
            assert resp.status == 200
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=old_trust)) as http:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.post(url, data=wire("www.example.test."))

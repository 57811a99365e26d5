"""`forward . https://...`: DNS over HTTPS (RFC 8484) to a real aiohttp server over TLS on
loopback (throwaway trustme CA); pooled connections bounded by expire, max_idle_conns, max_age."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.rcode
import pytest

from kdns.config import from_text
from kdns.corefile import CorefileError
from kdns.plugins.forward import ForwardPlugin
from tests.support.client import ask, rrs
from tests.support.doh_upstream import MIME, doh_upstream
from tests.support.dot_upstream import dot_upstream
from tests.support.plugins import context, parse_directive
from tests.support.server import running_kdns
from tests.support.waiting import eventually


def corefile(port: int, upstream: str, options: str, scheme: str = "https") -> str:
    return (
        f".:PORT {{\n errors\n bind 127.0.0.1\n forward . {scheme}://127.0.0.1{upstream}:{port}"
        f" {{\n{options}\n }}\n}}\n"
    )


async def test_answers_over_one_reused_connection_with_post(tmp_path: Path) -> None:
    async with doh_upstream(tmp_path) as (up, pki):
        text = corefile(up.port, "", f"  tls {pki.ca}\n  tls_servername dns.example.test")
        async with running_kdns(text, tmp_path) as srv:
            for i in range(5):
                msg = await ask(srv.port, f"n{i}.example.test.", "A", tcp=i % 2 == 1)
                assert msg.rcode() == dns.rcode.NOERROR
                assert [r[2] for r in rrs(msg)] == ["192.0.2.53"]
            labels = {"proxy_name": "forward", "to": f"127.0.0.1:{up.port}", "proto": "https"}
            get = srv.registry.get_sample_value
            assert get("coredns_proxy_conn_cache_misses_total", labels) == 1
            assert get("coredns_proxy_conn_cache_hits_total", labels) == 4
        assert up.connections == 1  # one TLS connection carried all five queries
        assert {r[:2] for r in up.requests} == {("POST", MIME)}
        assert {r[2] for r in up.requests} == {f"dns.example.test:{up.port}"}
        assert all(q.id == 0 for q in up.queries)  # RFC 8484 section 4.1


async def test_server_name_in_the_upstream_address(tmp_path: Path) -> None:
    async with doh_upstream(tmp_path) as (up, pki):
        text = corefile(up.port, "%dns.example.test", f"  tls {pki.ca}")
        async with running_kdns(text, tmp_path) as srv:
            msg = await ask(srv.port, "www.example.test.", "A")
            assert [r[2] for r in rrs(msg)] == ["192.0.2.53"]


@pytest.mark.parametrize(
    ("upstream", "ca"),
    [("%wrong.example.test", "ca"), ("%dns.example.test", "other_ca"), ("", "ca")],
    ids=["server-name-mismatch", "untrusted-ca", "ip-not-in-certificate"],
)
async def test_verification_failure_is_servfail_never_an_answer(
    tmp_path: Path, upstream: str, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with doh_upstream(tmp_path) as (up, pki):
        text = corefile(up.port, upstream, f"  tls {getattr(pki, ca)}")
        async with running_kdns(text, tmp_path) as srv:
            msg = await ask(srv.port, "www.example.test.", "A", timeout=10)
            assert msg.rcode() == dns.rcode.SERVFAIL
            assert not msg.answer
        assert up.queries == []
        assert "certificate" in caplog.text.lower()


async def test_health_check_goes_over_https(tmp_path: Path) -> None:
    async with doh_upstream(tmp_path) as (up, pki):
        cfg = parse_directive(
            f"forward . https://127.0.0.1%dns.example.test:{up.port} {{\n tls {pki.ca}\n}}",
            "forward",
        )
        fwd = ForwardPlugin(cfg, context())
        async with fwd.running():
            assert await fwd.proxies[0].probe_once()
            (probe,) = up.queries
            assert probe.question[0].to_text() == ". IN NS"
    fwd = ForwardPlugin(cfg, context())  # the upstream is gone now
    async with fwd.running():
        assert not await fwd.proxies[0].probe_once()
        assert fwd.proxies[0].fails == 1


async def test_max_idle_conns_closes_connections_beyond_the_bound(tmp_path: Path) -> None:
    async with doh_upstream(tmp_path) as (up, pki):
        text = corefile(
            up.port, "%dns.example.test", f"  tls {pki.ca}\n  max_idle_conns 1\n  expire 30s"
        )
        async with running_kdns(text, tmp_path) as srv:
            burst = [ask(srv.port, f"slow{i}.example.test.", "A") for i in range(4)]
            assert all(m.rcode() == dns.rcode.NOERROR for m in await asyncio.gather(*burst))
            assert up.connections == 4  # four queries at once: four connections
            await eventually(lambda: up.open_connections == 1)  # one kept idle, three closed
            again = await ask(srv.port, "again.example.test.", "A")
            assert again.rcode() == dns.rcode.NOERROR
            assert up.connections == 4  # the kept one was reused
            assert up.open_connections == 1


async def test_max_age_replaces_a_busy_connection(tmp_path: Path) -> None:
    async with doh_upstream(tmp_path) as (up, pki):
        opts = f"  tls {pki.ca}\n  expire 300ms\n  max_age 300ms"
        async with running_kdns(corefile(up.port, "%dns.example.test", opts), tmp_path) as srv:
            loop = asyncio.get_running_loop()
            end = loop.time() + 1.0
            while loop.time() < end:  # never idle for long: only max_age retires a connection
                msg = await ask(srv.port, "busy.example.test.", "A")
                assert msg.rcode() == dns.rcode.NOERROR
                await asyncio.sleep(0.05)
        assert up.connections >= 3
        for peer in set(up.peers):
            times = [t for p, t in zip(up.peers, up.times, strict=True) if p == peer]
            assert times[-1] - times[0] < 0.3 + 0.1  # none used past max_age (+ one exchange)


async def test_max_age_replaces_a_dot_connection(tmp_path: Path) -> None:
    async with dot_upstream(tmp_path) as (up, pki):
        opts = f"  tls {pki.ca}\n  expire 200ms\n  max_age 200ms"
        text = corefile(up.port, "%dns.example.test", opts, scheme="tls")
        async with running_kdns(text, tmp_path) as srv:
            loop = asyncio.get_running_loop()
            end = loop.time() + 0.8
            while loop.time() < end:
                msg = await ask(srv.port, "busy.example.test.", "A")
                assert msg.rcode() == dns.rcode.NOERROR
                await asyncio.sleep(0.05)
        assert up.connections >= 3


def test_https_forms_coredns_accepts_and_refuses() -> None:
    cfg = from_text(".:53 {\n forward . https://127.0.0.1 https://[::1]:8443 {\n  tls\n }\n}\n")
    ups = cfg.blocks[0].entries[0].config.upstreams
    assert [(u.host, u.port, u.https) for u in ups] == [
        ("127.0.0.1", 443, True),
        ("::1", 8443, True),
    ]
    with pytest.raises(CorefileError, match=r"Corefile:2: paths are not allowed in HTTPS"):
        from_text(".:53 {\n forward . https://1.1.1.1/dns-query\n}\n", "Corefile")
    with pytest.raises(CorefileError, match=r"Corefile:2: max_age \(10s\) must not be shorter"):
        from_text(".:53 {\n forward . 127.0.0.1 {\n expire 30s\n max_age 10s\n}\n}\n", "Corefile")

"""`forward . tls://...`: DNS over TLS to a real TLS server on loopback (throwaway trustme CA)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.rcode
import pytest

from kdns.config import from_text
from tests.support.client import ask, make_query, rrs
from tests.support.dot_upstream import dot_upstream
from tests.support.server import running_kdns


def corefile(port: int, upstream: str, options: str) -> str:
    return (
        f".:PORT {{\n bind 127.0.0.1\n forward . tls://127.0.0.1{upstream}:{port} {{\n"
        f"{options}\n }}\n}}\n"
    )


async def test_answers_over_one_reused_pipelined_connection(tmp_path: Path) -> None:
    async with dot_upstream(tmp_path) as (up, pki):
        text = corefile(up.port, "", f"  tls {pki.ca}\n  tls_servername dns.example.test")
        async with running_kdns(text, tmp_path) as srv:
            slow, fast = await asyncio.gather(
                ask(srv.port, "slow.example.test.", "A"),
                ask(srv.port, "fast.example.test.", "A", tcp=True),
            )
            again = await ask(srv.port, "again.example.test.", "A")
            for msg in (slow, fast, again):
                assert msg.rcode() == dns.rcode.NOERROR
                assert [r[2] for r in rrs(msg)] == ["192.0.2.53"]
            assert up.connections == 1  # reused, and both first queries were in flight on it
            assert up.received[:2] == ["slow.example.test.", "fast.example.test."]


async def test_server_name_in_the_upstream_address(tmp_path: Path) -> None:
    async with dot_upstream(tmp_path) as (up, pki):
        text = corefile(up.port, "%dns.example.test", f"  tls {pki.ca}")
        async with running_kdns(text, tmp_path) as srv:
            msg = await ask(srv.port, "www.example.test.", "A")
            assert [r[2] for r in rrs(msg)] == ["192.0.2.53"]


@pytest.mark.parametrize(
    ("upstream", "ca"),
    [("%wrong.example.test", "ca"), ("%dns.example.test", "other_ca")],
    ids=["server-name-mismatch", "untrusted-ca"],
)
async def test_verification_failure_is_servfail_never_an_answer(
    tmp_path: Path, upstream: str, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with dot_upstream(tmp_path) as (up, pki):
        text = corefile(up.port, upstream, f"  tls {getattr(pki, ca)}")
        text = text.replace(" bind", " errors\n bind")
        async with running_kdns(text, tmp_path) as srv:
            msg = await ask(srv.port, "www.example.test.", "A", timeout=10)
            assert msg.rcode() == dns.rcode.SERVFAIL
            assert not msg.answer
        assert up.received == []
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "certificate" in caplog.text


async def test_the_do_bit_reaches_the_upstream(tmp_path: Path) -> None:
    async with dot_upstream(tmp_path) as (up, pki):
        text = corefile(up.port, "%dns.example.test", f"  tls {pki.ca}")
        async with running_kdns(text, tmp_path) as srv:
            query = make_query("do.example.test.")
            query.want_dnssec(True)
            reply = await dns.asyncquery.udp(query, "127.0.0.1", port=srv.port, timeout=3)
            assert reply.rcode() == dns.rcode.NOERROR
        assert up.edns[0][1] & dns.flags.DO


def test_tls_forms_coredns_accepts() -> None:
    for upstream in (
        "tls://127.0.0.1%example.net:854 tls://127.0.0.2%example.net tls://fe80::1%example.com",
        "tls://[2400:3200::1%dns.alidns.com]:853",
    ):
        cfg = from_text(f".:53 {{\n forward . {upstream} {{\n  tls\n }}\n}}\n")
        ups = cfg.blocks[0].entries[0].config.upstreams
        assert all(u.tls and u.server_name for u in ups)
    first = from_text(".:53 {\n forward . tls://127.0.0.1%example.net:854\n}\n")
    assert first.blocks[0].entries[0].config.upstreams[0].port == 854

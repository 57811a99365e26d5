"""The server on real sockets: record forms, TCP framing and pipelining, wire rules, reloads."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from tests.support.client import ask, make_query, rrs
from tests.support.server import running_kdns, with_bundled_cluster
from tests.support.waiting import eventually

COREFILE = """\
.:PORT {
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        snapshot cluster.yaml
        pods insecure
        ttl 30
    }
}
"""


@pytest.fixture
def snapshot_dir(tmp_path: Path) -> Path:
    with_bundled_cluster(tmp_path)
    return tmp_path


async def test_record_forms_of_the_bundled_cluster(snapshot_dir: Path) -> None:
    async with running_kdns(COREFILE, snapshot_dir) as srv:
        msg = await ask(srv.port, "kubernetes.default.svc.cluster.local.")
        assert rrs(msg) == [("kubernetes.default.svc.cluster.local.", "A", "10.96.0.1")]
        assert msg.flags & dns.flags.AA and msg.answer[0].ttl == 30
        msg = await ask(srv.port, "db.shop.svc.cluster.local.")
        assert sorted(r[2] for r in rrs(msg)) == ["10.244.1.10", "10.244.2.11", "10.244.3.12"]
        msg = await ask(srv.port, "web.shop.svc.cluster.local.", "SRV")
        assert rrs(msg) == [
            ("web.shop.svc.cluster.local.", "SRV", "0 100 80 web.shop.svc.cluster.local.")
        ]
        msg = await ask(srv.port, "api.shop.svc.cluster.local.", "AAAA")
        assert rrs(msg) == [("api.shop.svc.cluster.local.", "AAAA", "fd00:10:96::2d")]
        msg = await ask(srv.port, "34.12.96.10.in-addr.arpa.", "PTR")
        assert rrs(msg) == [("34.12.96.10.in-addr.arpa.", "PTR", "web.shop.svc.cluster.local.")]
        msg = await ask(srv.port, "payments.shop.svc.cluster.local.", "CNAME")
        assert rrs(msg)[0][2] == "payments.example.com."
        msg = await ask(srv.port, "nothing.shop.svc.cluster.local.")
        assert msg.rcode() == dns.rcode.NXDOMAIN
        assert rrs(msg, "authority")[0][:2] == ("cluster.local.", "SOA")


async def test_not_ready_endpoints_are_not_published(snapshot_dir: Path) -> None:
    async with running_kdns(COREFILE, snapshot_dir) as srv:
        msg = await ask(srv.port, "10-244-2-9.web.shop.svc.cluster.local.")
        assert msg.rcode() == dns.rcode.NXDOMAIN
        msg = await ask(srv.port, "10-244-2-7.web.shop.svc.cluster.local.")
        assert rrs(msg) == [("10-244-2-7.web.shop.svc.cluster.local.", "A", "10.244.2.7")]


async def test_tcp_pipelined_queries_on_one_connection(snapshot_dir: Path) -> None:
    async with running_kdns(COREFILE, snapshot_dir) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        names = [f"{n}.shop.svc.cluster.local." for n in ("web", "db", "api", "nope")] * 5
        queries = [make_query(n, "A", edns=None) for n in names]
        writer.write(
            b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries))
        )
        await writer.drain()
        got = {}
        async with asyncio.timeout(5):
            for _ in queries:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                msg = dns.message.from_wire(await reader.readexactly(length))
                got[msg.id] = msg
        writer.close()
        assert len(got) == len(queries)
        for q in queries:
            r = got[q.id]
            assert r.question[0].name == q.question[0].name
            want = dns.rcode.NXDOMAIN if "nope" in str(q.question[0].name) else dns.rcode.NOERROR
            assert r.rcode() == want


async def test_garbage_does_not_disturb_good_clients(snapshot_dir: Path) -> None:
    async with running_kdns(COREFILE, snapshot_dir) as srv:
        bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bad.settimeout(2)
        try:
            packets = [
                b"",
                b"\x00",
                b"\x12\x34" + b"\x00" * 9,
                struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",
                struct.pack("!HHHHHH", 2, 0, 1, 0, 0, 0) + b"\x3f" + b"a" * 10,
                struct.pack("!HHHHHH", 3, 0x8000, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01",
            ]
            for p in packets * 20:
                bad.sendto(p, ("127.0.0.1", srv.port))
            # A compression loop and a truncated label get FORMERR with the client's ID.
            bad.sendto(packets[3], ("127.0.0.1", srv.port))
            for _ in range(200):
                data, _ = await asyncio.get_running_loop().run_in_executor(None, bad.recvfrom, 4096)
                if data[:2] == b"\x00\x01" and data[2] & 0x80:
                    assert data[3] & 0xF == dns.rcode.FORMERR
                    break
            else:
                pytest.fail("no FORMERR for a malformed question")
            results = await asyncio.gather(
                *(ask(srv.port, "web.shop.svc.cluster.local.") for _ in range(50))
            )
            assert all(
                rrs(m) == [("web.shop.svc.cluster.local.", "A", "10.96.12.34")] for m in results
            )
        finally:
            bad.close()


async def test_non_in_class_is_refused(snapshot_dir: Path) -> None:
    async with running_kdns(COREFILE, snapshot_dir) as srv:
        msg = await ask(srv.port, "version.bind.", "TXT", qclass="CH")
        assert msg.rcode() == dns.rcode.REFUSED


async def test_snapshot_reload_and_broken_file_keeps_last_good(snapshot_dir: Path) -> None:
    async with running_kdns(COREFILE, snapshot_dir) as srv:
        plugin = srv.app.instance.plugins[-1]  # type: ignore[union-attr]
        plugin.source.poll_interval = 0.05
        path = snapshot_dir / "cluster.yaml"
        path.write_text(path.read_text().replace("10.96.12.34", "10.96.99.99"))

        async def updated() -> bool:
            msg = await ask(srv.port, "web.shop.svc.cluster.local.")
            return rrs(msg)[0][2] == "10.96.99.99"

        await eventually(updated)
        path.write_text("items: [\n  {kind: Service, metadata: {name: x}\n")  # broken YAML
        await eventually(lambda: plugin.source.last_error != "")
        assert "cluster.yaml:" in plugin.source.last_error
        msg = await ask(srv.port, "web.shop.svc.cluster.local.")
        assert rrs(msg) == [("web.shop.svc.cluster.local.", "A", "10.96.99.99")]


async def test_unserved_zone_is_refused(tmp_path: Path) -> None:
    with_bundled_cluster(tmp_path)
    conf = COREFILE.replace(".:PORT", "cluster.local:PORT")
    async with running_kdns(conf, tmp_path) as srv:
        msg = await ask(srv.port, "example.org.")
        assert msg.rcode() == dns.rcode.REFUSED

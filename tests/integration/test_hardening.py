"""Nothing a client sends can stall kdns or starve other clients: floods, garbage, TCP abuse."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import sys
from pathlib import Path

import dns.exception
import dns.message
import dns.rcode
import pytest

from kdns.transport import tcp, udp
from tests.support.client import ask, make_query, rrs
from tests.support.server import running_kdns, with_bundled_cluster
from tests.support.upstream import Behaviour, fake_upstream
from tests.support.waiting import eventually

ROOT = Path(__file__).parents[2]
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
WEB = [("web.shop.svc.cluster.local.", "A", "10.96.12.34")]


def garbage(rng: random.Random) -> bytes:
    """One hostile packet: random bytes, truncated headers, pointer loops, bad EDNS, QR=1..."""
    good = make_query("web.shop.svc.cluster.local.", "A").to_wire()
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    if kind == 1:
        return good[: rng.randrange(0, 12)]
    if kind == 2:  # a pointer to itself in the question
        return struct.pack("!HHHHHH", rng.randrange(65536), 0, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1"
    if kind == 3:  # a label longer than the packet
        return struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x3f" + b"x" * 20
    if kind == 4:  # QR set: must be ignored
        return good[:2] + bytes([good[2] | 0x80]) + good[3:]
    if kind == 5:  # OPT with an option running past the end
        return good[:-2] + b"\x00\xff"
    if kind == 6:  # many records claimed, none present
        return good[:6] + b"\xff\xff\xff\xff\xff\xff" + good[12:]
    data = bytearray(good)
    for _ in range(rng.randrange(1, 6)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


FLOODER = """
import random, socket, sys, time
sys.path.insert(0, sys.argv[3])
from tests.integration.test_hardening import garbage
port, count = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
packets = [garbage(rng) for _ in range(2000)]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
deadline = time.monotonic() + 20
print("ready", flush=True)
for i in range(count):
    try:
        sock.sendto(packets[i % len(packets)], ("127.0.0.1", port))
    except OSError:
        pass
    if time.monotonic() > deadline:
        break
"""


async def test_legitimate_queries_answered_during_a_garbage_flood(tmp_path: Path) -> None:
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        flooder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FLOODER,
            str(srv.port),
            "300000",
            str(ROOT),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert flooder.stdout is not None
            assert (await flooder.stdout.readline()).strip() == b"ready"
            answered = 0
            for i in range(100):
                name = "web" if i % 2 else "db-0.db"
                # Like a stub resolver: a short timeout, and up to three tries.
                for _attempt in range(3):
                    try:
                        msg = await ask(srv.port, f"{name}.shop.svc.cluster.local.", timeout=2)
                    except dns.exception.Timeout:
                        continue
                    assert msg.rcode() == dns.rcode.NOERROR and len(rrs(msg)) == 1
                    answered += 1
                    break
            assert answered == 100
        finally:
            if flooder.returncode is None:
                flooder.kill()
            await flooder.wait()


async def test_tcp_abuse_does_not_starve_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tcp, "IDLE_TIMEOUT", 0.5)
    monkeypatch.setattr(tcp, "MAX_CONNECTIONS", 50)
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        listener = srv.app.listeners[("127.0.0.1", srv.port)].tcp
        idle = []
        for _ in range(60):  # more than the limit: idle, half-sent and slow connections
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            idle.append((r, w))
        for i, (_, w) in enumerate(idle[:20]):
            w.write(b"\x00" if i % 2 else b"\x00\x40" + b"\x01")  # a header, or a partial query
            await w.drain()
        # UDP is unaffected while TCP is saturated.
        assert rrs(await ask(srv.port, "web.shop.svc.cluster.local.")) == WEB
        assert listener.rejected >= 10
        # Idle and slow connections are cut after the idle timeout, freeing the slots ...
        await eventually(lambda: listener.connections == 0, timeout=10)
        # ... so a well-behaved TCP client is served.
        msg = await ask(srv.port, "web.shop.svc.cluster.local.", tcp=True)
        assert rrs(msg) == WEB
        for _, w in idle:
            w.close()


async def test_udp_overload_drops_instead_of_queueing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Queries that wait (forwarded to an upstream that takes its time) are the in-flight work
    # the bound is about; beyond it a datagram is dropped, never queued.
    monkeypatch.setattr(udp, "MAX_INFLIGHT", 16)
    async with fake_upstream(behaviour=Behaviour(delay=0.3)) as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = COREFILE.rstrip().removesuffix("}") + f"    forward . 127.0.0.1:{up.port}\n}}\n"
        async with running_kdns(corefile, with_bundled_cluster(tmp_path)) as srv:
            server = srv.app.listeners[("127.0.0.1", srv.port)].udp
            assert server is not None
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                for i in range(200):  # distinct names: no cache, no fast path
                    q = make_query(f"n{i}.example.test.", "A").to_wire()
                    try:
                        sock.sendto(q, ("127.0.0.1", srv.port))
                    except BlockingIOError:
                        await asyncio.sleep(0)
            finally:
                sock.close()
            await eventually(lambda: server.dropped > 0, timeout=10)
            assert server.peak_inflight <= 16
            # Cluster names need no in-flight slot: they are answered while it is saturated.
            assert rrs(await ask(srv.port, "web.shop.svc.cluster.local.")) == WEB
            await eventually(lambda: server.inflight == 0, timeout=10)


async def test_a_flood_of_names_asked_once_is_answered_without_in_flight_work(
    tmp_path: Path,
) -> None:
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        server = srv.app.listeners[("127.0.0.1", srv.port)].udp
        dispatcher = srv.app.instance.dispatchers[("127.0.0.1", srv.port)]  # type: ignore[union-attr]
        assert server is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for every reply: queued cold work is answered between the polls below.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        replies = 0
        try:
            for i in range(2000):
                q = make_query(f"n{i}.shop.svc.cluster.local.", "A").to_wire()
                with contextlib.suppress(BlockingIOError):
                    sock.sendto(q, ("127.0.0.1", srv.port))
                while True:
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        break
                    replies += dns.message.from_wire(data).rcode() == dns.rcode.NXDOMAIN
                if i % 64 == 0:
                    await asyncio.sleep(0)

            async def drained() -> bool:
                nonlocal replies
                with contextlib.suppress(BlockingIOError):
                    while True:
                        data = sock.recv(4096)
                        replies += dns.message.from_wire(data).rcode() == dns.rcode.NXDOMAIN
                return replies + server.dropped + server.shed >= 2000

            await eventually(drained, timeout=20)
        finally:
            sock.close()
        # Every query was answered, or shed and counted where more full-path work waited than
        # the bound on queued cold work (sent faster than answered, most of them are shed).
        assert replies >= server.max_cold
        assert replies + server.shed + server.dropped == 2000
        assert server.peak_inflight == 0  # and not one of them became a task
        assert not dispatcher.fastpath.entries  # nor took a fast-path slot
        assert rrs(await ask(srv.port, "web.shop.svc.cluster.local.")) == WEB


async def test_a_huge_tcp_length_prefix_is_harmless(tmp_path: Path) -> None:
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        w.write(b"\xff\xff" + b"\x00" * 100)  # claims 65535 bytes, sends 100, then closes
        await w.drain()
        w.close()
        q = make_query("web.shop.svc.cluster.local.", "A")
        r2, w2 = await asyncio.open_connection("127.0.0.1", srv.port)
        wire = q.to_wire()
        w2.write(struct.pack("!H", len(wire)) + wire)
        await w2.drain()
        async with asyncio.timeout(5):
            (n,) = struct.unpack("!H", await r2.readexactly(2))
            msg = dns.message.from_wire(await r2.readexactly(n))
        w2.close()
        assert rrs(msg) == WEB
        del r


async def test_shed_queries_are_counted_on_metrics_and_not_as_requests(tmp_path: Path) -> None:
    """A burst of names asked once beyond the bound on queued full-path work: what is shed is
    exported as kdns_udp_shed_total, and coredns_dns_requests_total counts exactly the rest."""
    from tests.support.http import scrape, series
    from tests.support.ports import free_port

    mport = free_port()
    corefile = COREFILE.replace("{\n", f"{{\n    prometheus 127.0.0.1:{mport}\n", 1)
    async with running_kdns(corefile, with_bundled_cluster(tmp_path)) as srv:
        server = srv.app.listeners[("127.0.0.1", srv.port)].udp
        assert server is not None
        server.max_cold = 5
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        burst = 200
        replies = 0
        try:
            for i in range(burst):  # all at once: the server reads them in one wake-up
                q = make_query(f"shed{i}.shop.svc.cluster.local.", "A").to_wire()
                sock.sendto(q, ("127.0.0.1", srv.port))

            async def all_accounted() -> bool:
                nonlocal replies
                with contextlib.suppress(BlockingIOError):
                    while True:
                        sock.recv(4096)
                        replies += 1
                return replies + server.shed >= burst

            await eventually(all_accounted, timeout=20)
        finally:
            sock.close()
        assert server.shed > 0
        samples = await scrape(mport)
    shed = sum(series(samples, "kdns_udp_shed_total").values())
    requests = sum(series(samples, "coredns_dns_requests_total").values())
    assert shed == server.shed
    assert requests == replies == burst - shed

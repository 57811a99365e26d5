"""The batched UDP loop (recvmmsg/sendmmsg): every datagram of a burst gets its own reply, over
IPv4, IPv6 and a dual-stack socket, including replies too big for a batch slot."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from kdns.transport import mmsg
from tests.support.client import ask, make_query, rrs
from tests.support.server import running_kdns, with_bundled_cluster

COREFILE = """\
.:PORT {
    BIND
    kubernetes cluster.local {
        snapshot cluster.yaml
    }
}
"""
WEB = [("web.shop.svc.cluster.local.", "A", "10.96.12.34")]


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_batched_io_is_used_on_linux() -> None:
    assert mmsg.available() or not __import__("sys").platform.startswith("linux")


async def test_a_burst_gets_one_reply_per_query(tmp_path: Path) -> None:
    async with running_kdns(
        COREFILE.replace("BIND", "bind 127.0.0.1"), with_bundled_cluster(tmp_path)
    ) as srv:
        await ask(srv.port, "web.shop.svc.cluster.local.")  # now served from bytes
        names = [
            "web.shop.svc.cluster.local." if i % 3 else f"n{i}.shop.svc.cluster.local."
            for i in range(150)
        ]
        queries = {}
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            for i, name in enumerate(names):
                q = make_query(name, "A")
                q.id = i
                queries[i] = name
                sock.sendto(q.to_wire(), ("127.0.0.1", srv.port))
            got: dict[int, dns.message.Message] = {}
            async with asyncio.timeout(10):
                while len(got) < len(names):
                    data = await loop.sock_recv(sock, 4096)
                    msg = dns.message.from_wire(data)
                    got[msg.id] = msg
        finally:
            sock.close()
        for i, name in queries.items():
            msg = got[i]
            assert msg.question[0].name.to_text() == name
            if name.startswith("web."):
                assert rrs(msg) == WEB
            else:
                assert msg.rcode() == dns.rcode.NXDOMAIN


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
@pytest.mark.parametrize("bind", ["bind ::1", ""])
async def test_ipv6_and_dual_stack_listeners(tmp_path: Path, bind: str) -> None:
    async with running_kdns(COREFILE.replace("BIND", bind), with_bundled_cluster(tmp_path)) as srv:
        hosts = ["::1"] if bind else ["::1", "127.0.0.1"]
        for host in hosts:
            for _ in range(3):  # the second and third come from bytes
                msg = await ask(srv.port, "web.shop.svc.cluster.local.", host=host)
                assert rrs(msg) == WEB


async def test_replies_bigger_than_a_slot_take_the_full_path(tmp_path: Path) -> None:
    items = "\n".join(
        f"  - addresses: [10.9.{i // 250}.{i % 250 + 1}]\n    conditions: {{ready: true}}"
        for i in range(400)
    )
    (tmp_path / "cluster.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: huge, namespace: default}\n"
        "spec: {clusterIP: None, ports: [{name: http, port: 80, protocol: TCP}]}\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: huge-1, namespace: default, labels: "
        "{kubernetes.io/service-name: huge}}\naddressType: IPv4\nendpoints:\n" + items + "\n"
    )
    async with running_kdns(COREFILE.replace("BIND", "bind 127.0.0.1"), tmp_path) as srv:
        for _ in range(3):
            msg = await ask(srv.port, "huge.default.svc.cluster.local.", payload=65000)
            assert len(msg.to_wire()) > mmsg.SLOT and len(rrs(msg)) == 400


@pytest.mark.skipif(not mmsg.available(), reason="the cold-work queue is part of the batched loop")
async def test_stored_replies_go_first_and_cold_work_beyond_the_bound_is_shed() -> None:
    """A burst of full-path queries (each costing 1 ms here) with one query answered from bytes
    and one asked before (full path too) behind it: both are answered at once, not after the
    burst; cold work beyond `max_cold` is dropped and counted, and every cold query is either
    answered or counted as shed."""
    from kdns.transport import udp

    cold_cost = 0.001

    async def serve(data: bytes, proto: str, client: str, port: int) -> bytes | None:
        until = time.perf_counter() + cold_cost
        while time.perf_counter() < until:
            pass
        return data

    def fast(data: bytes) -> bytes | None:
        return data if data.startswith(b"hot") else None

    sock = udp.open_socket("127.0.0.1", 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    server = udp.UdpServer(sock, serve, fast)
    server.max_cold = 50
    server.known = lambda data: data.startswith(b"warm")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    burst = 300
    try:
        for i in range(burst):
            client.sendto(b"cold%d" % i, ("127.0.0.1", server.port))
        client.sendto(b"hot", ("127.0.0.1", server.port))
        client.sendto(b"warm", ("127.0.0.1", server.port))
        got: list[bytes] = []

        async def receive_until_quiet() -> None:
            while True:
                try:
                    got.append(await asyncio.wait_for(loop.sock_recv(client, 100), 0.5))
                except TimeoutError:
                    return

        await asyncio.wait_for(receive_until_quiet(), 30)
        assert b"hot" in got
        cold = [g for g in got if g.startswith(b"cold")]
        assert got.index(b"hot") < 10  # not behind the burst's 300 ms of full-path work
        assert got.index(b"warm") < 10  # asked before: ahead of the names asked once
        assert server.shed > 0
        assert len(cold) + server.shed == burst
        assert len(cold) <= server.max_cold + 64  # a batch read ahead of the bound, at most
    finally:
        client.close()
        server.close()

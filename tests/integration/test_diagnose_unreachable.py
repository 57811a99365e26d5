"""`kdns diagnose --server` against servers that do not answer: real loopback sockets that stay
silent, refuse or reset. Every run ends with a report (or one line and exit 1), never a
traceback, and the walk goes on or stops as the modelled library would."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import dns.flags
import dns.message
import pytest

from tests.support.diagnose import diagnose, diagnose_json
from tests.support.ports import free_port

FAST = ("--timeout", "0.3")


def rows(doc: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(q["qname"], q["rcode"], q["error"]) for q in doc["queries"]]


@contextmanager
def silent_udp() -> Iterator[int]:
    """A bound UDP socket nobody reads: queries arrive and are never answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@asynccontextmanager
async def resetting_tcp() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP listener that reads one length-prefixed query, then resets the connection."""
    got: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        got.append(len(await reader.readexactly(size)))
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # SO_LINGER 0: the close sends RST

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), got
    finally:
        server.close()
        await server.wait_closed()


async def test_a_silent_server_is_a_timeout_per_query_and_glibc_still_tries_the_name() -> None:
    with silent_udp() as port:
        server = f"127.0.0.1:{port}"
        glibc = await diagnose_json("web.shop", "-n", "shop", "--server", server, *FAST)
        musl = await diagnose_json(
            "web.shop", "-n", "shop", "--server", server, "--resolver", "musl", *FAST
        )
        code, out, err = await diagnose("web.shop", "-n", "shop", "--server", server, *FAST)
    # glibc leaves the search list after a timeout but still asks the name as typed.
    assert rows(glibc) == [
        ("web.shop.shop.svc.cluster.local.", "TIMEOUT", "TIMEOUT"),
        ("web.shop.shop.svc.cluster.local.", "TIMEOUT", "TIMEOUT"),
        ("web.shop.", "TIMEOUT", "TIMEOUT"),
        ("web.shop.", "TIMEOUT", "TIMEOUT"),
    ]
    assert glibc["status"] == "error" and "EAI_AGAIN" in glibc["message"]
    assert all(q["note"] == "no reply within 0.3 s" for q in glibc["queries"])
    # musl fails at the first step without a reply.
    assert [q["rcode"] for q in musl["queries"]] == ["TIMEOUT", "TIMEOUT"]
    assert musl["status"] == "error"
    assert [a["kind"] for a in glibc["advice"]] == ["no-reply"]
    assert code == 0 and err == "" and "Traceback" not in out
    assert "TIMEOUT  no reply within 0.3 s" in out


async def test_a_closed_udp_port_is_refused_and_glibc_gives_up_at_once() -> None:
    port = free_port()
    doc = await diagnose_json("web.shop", "-n", "shop", "--server", f"127.0.0.1:{port}", *FAST)
    # ECONNREFUSED ends glibc's res_search: no other search domain, no name as typed.
    assert rows(doc) == [
        ("web.shop.shop.svc.cluster.local.", "REFUSED", "REFUSED"),
        ("web.shop.shop.svc.cluster.local.", "REFUSED", "REFUSED"),
    ]
    assert doc["queries"][0]["note"] == "ICMP port unreachable"
    assert doc["status"] == "error" and doc["not_tried"] == [
        "web.shop.svc.cluster.local.",
        "web.shop.cluster.local.",
        "web.shop.",
    ]
    advice = doc["advice"]
    assert [a["kind"] for a in advice] == ["no-reply"]
    assert "REFUSED: ICMP port unreachable" in advice[0]["text"]


async def test_tcp_refused_says_refused_with_the_reason() -> None:
    port = free_port()
    doc = await diagnose_json(
        "web.shop", "-n", "shop", "--server", f"127.0.0.1:{port}", "--tcp", *FAST
    )
    assert [(q["rcode"], q["note"]) for q in doc["queries"]] == [
        ("REFUSED", "TCP connection refused"),
        ("REFUSED", "TCP connection refused"),
    ]
    assert doc["status"] == "error"


async def test_a_tcp_server_that_resets_is_reset_and_the_walk_goes_on() -> None:
    async with resetting_tcp() as (port, got):
        doc = await diagnose_json(
            "web.shop", "-n", "shop", "--server", f"127.0.0.1:{port}", "--tcp", *FAST
        )
    # ECONNRESET is not ECONNREFUSED: glibc leaves the search list and asks the name as typed.
    assert rows(doc) == [
        ("web.shop.shop.svc.cluster.local.", "RESET", "RESET"),
        ("web.shop.shop.svc.cluster.local.", "RESET", "RESET"),
        ("web.shop.", "RESET", "RESET"),
        ("web.shop.", "RESET", "RESET"),
    ]
    assert doc["queries"][0]["note"] == "connection reset by the server"
    assert len(got) == 4  # every query reached the server before the reset


class _Truncating(asyncio.DatagramProtocol):
    """Answers every UDP query with an empty truncated reply (TC set): go ask over TCP."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = dns.message.make_response(dns.message.from_wire(data))
        reply.flags |= dns.flags.TC
        self.transport.sendto(reply.to_wire(), addr)


async def test_a_truncated_reply_whose_tcp_retry_is_refused_says_so() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Truncating, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]  # no TCP listener on it
        doc = await diagnose_json(
            "big.example.test.", "--server", f"127.0.0.1:{port}", "--qtype", "A", *FAST
        )
    finally:
        transport.close()
    [query] = doc["queries"]
    assert (query["rcode"], query["error"]) == ("REFUSED", "REFUSED")
    assert query["note"] == "TCP retry (reply was truncated): TCP connection refused"
    assert doc["status"] == "error"


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("notahost.invalid", "'notahost.invalid' is not an IP address and does not resolve"),
        ("256.1.1.1", "256.1.1.1 is not a valid IPv4 address"),
        ("", "--server needs HOST[:PORT], got ''"),
        ("127.0.0.1:0", "invalid port in '127.0.0.1:0'"),
        ("[::1]:x", "invalid server '[::1]:x'"),
    ],
)
async def test_an_unusable_server_is_one_line_and_exit_1(server: str, message: str) -> None:
    code, out, err = await diagnose("web.shop", "-n", "shop", "--server", server, *FAST)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and message in err and err.startswith("kdns diagnose: ")


async def test_a_bad_timeout_is_one_line_and_exit_1() -> None:
    code, out, err = await diagnose("web.shop", "--server", "127.0.0.1", "--timeout", "0")
    assert (code, out) == (1, "") and "--timeout must be a positive" in err

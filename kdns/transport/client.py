"""One question to one upstream server over UDP or TCP, with spoofing defences.

Every UDP exchange uses a fresh socket connected to the upstream, so the source port is chosen by
the kernel at random and only datagrams from the upstream's address and port are delivered. The
message ID comes from `secrets`. A reply is accepted only if its ID, its QR bit and its question
(compared case-insensitively) match what was asked; anything else is ignored and the exchange
keeps waiting until its deadline, so a forged reply can neither be accepted nor cut the real one
short. TCP uses 2-byte length framing and the same checks.

Each exchange opens its own connection: connections are not reused (the `expire` option of
`forward` therefore bounds nothing yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
from dataclasses import dataclass

from kdns.dns import names, wire
from kdns.dns.message import FLAG_QR, EdnsOption
from kdns.dns.wire import Message, WireError

UPSTREAM_EDNS_SIZE = 1232  # DNS flag day 2020: no fragmentation on common paths


class ExchangeError(Exception):
    """No acceptable reply: timeout, connection failure or a broken TCP stream."""


@dataclass(frozen=True, slots=True)
class Question:
    qname: str
    qtype: int
    qclass: int = 1
    rd: bool = True
    do: bool = False
    cd: bool = False
    options: tuple[EdnsOption, ...] = ()  # EDNS0 options sent along (the client's, rewrite's)


def new_id() -> int:
    return secrets.randbelow(0x10000)


def encode(question: Question, mid: int) -> bytes:
    return wire.encode_query(
        question.qname,
        question.qtype,
        mid,
        rd=question.rd,
        edns_size=UPSTREAM_EDNS_SIZE,
        do=question.do,
        cd=question.cd,
        qclass=question.qclass,
        options=question.options,
    )


def matches(data: bytes, mid: int, question: Question) -> Message | None:
    """The decoded reply if it answers `question` with ID `mid`, else None."""
    if len(data) < 12:
        return None
    rid, flags = struct.unpack_from("!HH", data, 0)
    if rid != mid or not flags & FLAG_QR:
        return None
    try:
        msg = wire.decode_message(data)
    except WireError:
        return None
    if len(msg.question) != 1:
        return None
    qname, qtype, qclass = msg.question[0]
    if (
        names.normalize(qname) != names.normalize(question.qname)
        or qtype != question.qtype
        or qclass != question.qclass
    ):
        return None
    return msg


class _UdpExchange(asyncio.DatagramProtocol):
    def __init__(self, mid: int, question: Question, peer: tuple[str, int]) -> None:
        self.mid = mid
        self.question = question
        self.peer = peer
        self.result: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.ignored = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.result.done():
            return
        # A connected socket already filters by peer; check anyway (defence in depth).
        if (str(addr[0]), int(addr[1])) != self.peer:
            self.ignored += 1
            return
        msg = matches(data, self.mid, self.question)
        if msg is None:
            self.ignored += 1
            return
        self.result.set_result(msg)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: the upstream is not listening.
        if not self.result.done():
            self.result.set_exception(ExchangeError(f"udp: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.result.done():
            self.result.set_exception(ExchangeError(f"udp: connection lost: {exc}"))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _local(source: str | None) -> tuple[str, int] | None:
    return None if source is None else (source, 0)


async def udp(
    host: str, port: int, question: Question, timeout: float, source: str | None = None
) -> Message:
    mid = new_id()
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(mid, question, (host, port)),
            local_addr=_local(source),
            remote_addr=(host, port),
            family=_family(host),
        )
    except OSError as exc:
        raise ExchangeError(f"udp: {exc}") from exc
    try:
        transport.sendto(encode(question, mid))
        try:
            async with asyncio.timeout(timeout):
                return await proto.result
        except TimeoutError:
            raise ExchangeError(f"udp: no reply from {host}:{port} in {timeout:g}s") from None
    finally:
        transport.close()


async def tcp(
    host: str, port: int, question: Question, timeout: float, source: str | None = None
) -> Message:
    mid = new_id()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, family=_family(host), local_addr=_local(source)
            )
            query = encode(question, mid)
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                msg = matches(data, mid, question)
                if msg is not None:
                    return msg
    except TimeoutError:
        raise ExchangeError(f"tcp: no reply from {host}:{port} in {timeout:g}s") from None
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise ExchangeError(f"tcp: {exc}") from exc
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def exchange(
    host: str,
    port: int,
    question: Question,
    timeout: float,
    *,
    proto: str = "udp",
    source: str | None = None,
) -> Message:
    """Ask over `proto` (from `source` if given); a truncated UDP reply is asked again over TCP
    in the time left."""
    if proto == "tcp":
        return await tcp(host, port, question, timeout, source)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    msg = await udp(host, port, question, timeout, source)
    if msg.tc:
        return await tcp(host, port, question, max(0.05, deadline - loop.time()), source)
    return msg

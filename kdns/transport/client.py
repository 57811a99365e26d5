"""One question to one upstream server over UDP or TCP, with spoofing defences.

Every UDP exchange uses a fresh socket connected to the upstream, so the source port is chosen by
the kernel at random and only datagrams from the upstream's address and port are delivered. The
message ID comes from `secrets`. A reply is accepted only if its ID, its QR bit and its question
(compared case-insensitively) match what was asked; anything else is ignored and the exchange
keeps waiting until its deadline, so a forged reply can neither be accepted nor cut the real one
short. TCP uses 2-byte length framing and the same checks.

Each exchange opens its own connection: UDP and TCP connections are not reused (forward's
`expire`, `max_idle_conns` and `max_age` bound the pooled connections of dot.py and doh.py).

The raw exchanges at the end ask as a stub resolver does (several queries on one socket, the
first reply taken as it is, failures handed back unchanged) for `kdns diagnose`, which reports
what glibc or musl would see; every DNS socket of kdns is opened in this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kdns.dns import names, wire
from kdns.dns.message import FLAG_QR, Edns
from kdns.dns.wire import Message, WireError


class ExchangeError(Exception):
    """No acceptable reply: timeout, connection failure or a broken TCP stream."""


@dataclass(frozen=True, slots=True)
class Question:
    qname: str
    qtype: int
    qclass: int = 1
    rd: bool = True
    cd: bool = False
    # The client's OPT record, sent on as it came (buffer size, DO bit, options), as CoreDNS's
    # forward sends the client's message; None: the query goes without EDNS.
    edns: Edns | None = None

    @property
    def do(self) -> bool:
        return self.edns is not None and self.edns.do


def new_id() -> int:
    return secrets.randbelow(0x10000)


def encode(question: Question, mid: int) -> bytes:
    edns = question.edns
    return wire.encode_query(
        question.qname,
        question.qtype,
        mid,
        rd=question.rd,
        edns_size=None if edns is None else edns.udp_size,
        do=question.do,
        cd=question.cd,
        qclass=question.qclass,
        options=() if edns is None else edns.options,
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


# -- as a stub resolver asks (kdns diagnose) ------------------------------------------------------
# Raw exchanges: the queries go out as given and every reply or failure comes back as it is, so
# the caller can report what the socket saw (timeout, ICMP refusal, reset) the way a resolver
# library would, rather than the forwarder's ExchangeError.

Arrival = tuple[bytes, float] | Exception  # a reply and its perf_counter time, or the failure


def resolve(host: str, port: int) -> str:
    """The first address getaddrinfo gives for `host`; ValueError saying why there is none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(exc.strerror if isinstance(exc, socket.gaierror) else str(exc)) from None
    return str(infos[0][4][0])


class _Together(asyncio.DatagramProtocol):
    def __init__(self, waiting: dict[int, asyncio.Future[Arrival]]) -> None:
        self.waiting = waiting

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 2:
            return
        fut = self.waiting.get(struct.unpack_from("!H", data)[0])
        if fut is not None and not fut.done():
            fut.set_result((data, time.perf_counter()))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable or a failed send. glibc's socket is connected too, so it sees
        # the same error and stops waiting for this server.
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_result(exc)


async def udp_together(
    host: str, port: int, queries: Sequence[tuple[int, bytes]], timeout: float
) -> tuple[list[Arrival], list[float]]:
    """Send `queries` (ID, message) in order on one connected UDP socket, as getaddrinfo sends
    its A and AAAA queries, and wait up to `timeout` for the replies, matched by ID.

    Returns each query's arrival (TimeoutError when none came) and the time it was sent.
    """
    loop = asyncio.get_running_loop()
    waiting: dict[int, asyncio.Future[Arrival]] = {}
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Together(waiting), remote_addr=(host, port)
        )
    except OSError as exc:
        return [exc for _ in queries], [time.perf_counter() for _ in queries]
    sent: list[float] = []
    try:
        for mid, query in queries:
            waiting[mid] = loop.create_future()
            transport.sendto(query)
            sent.append(time.perf_counter())
        await asyncio.wait(list(waiting.values()), timeout=timeout)
    finally:
        transport.close()
    arrivals: list[Arrival] = []
    for mid, _ in queries:
        fut = waiting[mid]
        arrivals.append(fut.result() if fut.done() else TimeoutError())
    return arrivals, sent


async def tcp_once(host: str, port: int, query: bytes, timeout: float) -> bytes:
    """One query on a new TCP connection and the first reply read back, whatever it is.

    Raises what the connection saw: TimeoutError, OSError or asyncio.IncompleteReadError.
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(size)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

"""UDP listener with bounded in-flight work.

A datagram starts one task; when `max_inflight` tasks are already running the datagram is dropped
(the client retries), so overload never grows an unbounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

log = logging.getLogger("kdns.udp")

Serve = Callable[[bytes, str, str, int], Awaitable[bytes | None]]
MAX_INFLIGHT = 2048


def client_ip(host: str) -> str:
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; use the IPv4 form.
    return host[7:] if host.startswith("::ffff:") and "." in host else host


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, serve: Serve, max_inflight: int = MAX_INFLIGHT) -> None:
        self.serve = serve
        self.max_inflight = max_inflight
        self.inflight = 0
        self.dropped = 0
        self.accepting = True  # cleared at shutdown: accepted queries finish, new ones drop
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.inflight >= self.max_inflight or not self.accepting:
            self.dropped += 1
            return
        self.inflight += 1
        self._idle.clear()
        task = asyncio.ensure_future(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            out = await self.serve(data, "udp", client_ip(str(addr[0])), int(addr[1]))
            if out is not None and self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(out, addr)
        except Exception:
            log.exception("udp: failed to answer a datagram")
        finally:
            self.inflight -= 1
            if self.inflight == 0:
                self._idle.set()

    def error_received(self, exc: Exception) -> None:
        log.debug("udp: %s", exc)

    async def drain(self) -> None:
        """Wait until every accepted query has been answered."""
        await self._idle.wait()


def open_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # A large receive buffer absorbs bursts instead of dropping them in the kernel.
        for size in (4 << 20, 1 << 20):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                break
            except OSError:
                continue
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def listen(
    host: str, port: int, serve: Serve
) -> tuple[asyncio.DatagramTransport, UdpProtocol]:
    loop = asyncio.get_running_loop()
    sock = open_socket(host, port)
    transport, protocol = await loop.create_datagram_endpoint(lambda: UdpProtocol(serve), sock=sock)
    return transport, protocol

"""One DNS listening address: a UDP socket and a TCP server on the same host and port (dns://),
a TLS server (tls://, DNS over TLS), or an HTTP(S) server (https://, DNS over HTTPS).

Listeners outlive configurations: a reload points them at new handlers (`use`) under the same
sockets. Host "" means every interface: IPv6 dual-stack where the host has it, else IPv4.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable

from kdns.hostport import show
from kdns.transport import tcp, udp
from kdns.transport.doh_server import HttpsListener

log = logging.getLogger("kdns")

ListenKey = tuple[str, int]


class Listener:
    """A UDP socket and a TCP server on one address and port; `serve` answers what they read."""

    def __init__(self, key: ListenKey, serve: tcp.Serve) -> None:
        self.key = key
        self._serve = serve
        self.udp: udp.UdpServer | None = None
        self.tcp = tcp.TcpListener(serve)

    def use(self, fast: udp.Fast | None, known: udp.Known | None = None) -> None:
        """Offer each UDP datagram to `fast` first (the current configuration's fast path);
        `known` tells queries asked before from new ones for the cold-work queue. Called
        whenever a new configuration goes live."""
        if self.udp is not None:
            self.udp.fast = fast
            self.udp.known = known

    async def open(self) -> None:
        host, port = self.key
        if host == "":
            host = "::" if socket.has_ipv6 else "0.0.0.0"
            try:
                self.udp = udp.listen(host, port, self._serve)
            except OSError:
                host = "0.0.0.0"
                self.udp = udp.listen(host, port, self._serve)
        else:
            self.udp = udp.listen(host, port, self._serve)
        try:
            await self.tcp.start(None if self.key[0] == "" else host, port)
        except BaseException:
            self.udp.close()
            raise
        log.info("dns: listening on %s (udp, tcp)", show(host, port))

    def stop_accepting(self) -> None:
        """Answer what was accepted, take nothing new (UDP drops, the TCP socket closes)."""
        if self.udp is not None:
            self.udp.accepting = False
        if self.tcp.server is not None:
            self.tcp.server.close()

    async def drain(self) -> None:
        if self.udp is not None:
            await self.udp.drain()
        await self.tcp.drain()

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        await self.tcp.close()


class TlsListener:
    """DNS over TLS on one address: a TCP server whose connections are TLS (no UDP)."""

    def __init__(self, key: ListenKey, serve: tcp.Serve, tls: ssl.SSLContext) -> None:
        self.key = key
        self.tls = tls
        self.tcp = tcp.TcpListener(serve)

    def use(self, fast: udp.Fast | None, known: udp.Known | None = None) -> None:
        """No fast path: it answers from UDP datagrams only."""

    async def open(self) -> None:
        host, port = self.key
        await self.tcp.start(host or None, port, self.tls)
        log.info("dns: listening on %s (tls)", show(host, port))

    def stop_accepting(self) -> None:
        if self.tcp.server is not None:
            self.tcp.server.close()

    async def drain(self) -> None:
        await self.tcp.drain()

    async def close(self) -> None:
        await self.tcp.close()


AnyListener = Listener | TlsListener | HttpsListener


def make(
    key: ListenKey,
    scheme: str,
    serve: tcp.Serve,
    tls: ssl.SSLContext | None,
    on_status: Callable[[int], None] | None = None,
) -> AnyListener:
    """The listener for a server block's transport: dns, tls (needs `tls`) or https."""
    if scheme == "https":
        return HttpsListener(key, serve, tls, on_status)
    if scheme == "tls":
        assert tls is not None, "a tls:// block has a tls directive (checked by config)"
        return TlsListener(key, serve, tls)
    return Listener(key, serve)

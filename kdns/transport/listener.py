"""One DNS listening address: a UDP socket and a TCP server on the same host and port.

Listeners outlive configurations: a reload points them at new handlers (`use`) under the same
sockets. Host "" means every interface: IPv6 dual-stack where the host has it, else IPv4.
"""

from __future__ import annotations

import logging
import socket

from kdns.hostport import show
from kdns.transport import tcp, udp

log = logging.getLogger("kdns")

ListenKey = tuple[str, int]


class Listener:
    """A UDP socket and a TCP server on one address and port; `serve` answers what they read."""

    def __init__(self, key: ListenKey, serve: udp.Serve) -> None:
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

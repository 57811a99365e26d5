"""A DNS-over-HTTPS upstream on loopback for tests: aiohttp over TLS with a certificate from a
throwaway trustme CA, answering every A question with 192.0.2.53 and recording what it gets
(method, headers, each query, and the client port of each request, so connections can be
counted)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rrset
from aiohttp import web

from tests.support.dot_upstream import Pki, pki

MIME = "application/dns-message"


@dataclass
class DohUpstream:
    port: int = 0
    queries: list[dns.message.Message] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, type, Host
    peers: list[int] = field(default_factory=list)  # client port of each request
    times: list[float] = field(default_factory=list)  # loop time of each request
    transports: dict[int, asyncio.BaseTransport] = field(default_factory=dict)  # by client port
    slow: float = 0.3  # a name starting with "slow" is answered after this long

    @property
    def connections(self) -> int:
        return len(set(self.peers))

    @property
    def open_connections(self) -> int:
        return sum(not t.is_closing() for t in self.transports.values())

    async def handle(self, request: web.Request) -> web.Response:
        transport = request.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")[1]
        self.peers.append(peer)
        self.transports[peer] = transport
        self.times.append(asyncio.get_running_loop().time())
        self.requests.append(
            (request.method, request.content_type, request.headers.get("Host", ""))
        )
        if request.method == "GET":
            b64 = request.query["dns"]
            wire = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        else:
            wire = await request.read()
        query = dns.message.from_wire(wire)
        self.queries.append(query)
        resp = dns.message.make_response(query)
        qname = query.question[0].name.to_text()
        if qname.startswith("slow"):
            await asyncio.sleep(self.slow)
        resp.answer.append(dns.rrset.from_text(qname, 60, "IN", "A", "192.0.2.53"))
        return web.Response(body=resp.to_wire(), content_type=MIME)


@contextlib.asynccontextmanager
async def doh_upstream(
    directory: Path, names: tuple[str, ...] = ("dns.example.test",)
) -> AsyncIterator[tuple[DohUpstream, Pki]]:
    server_ctx, files = pki(directory, names)
    up = DohUpstream()
    app = web.Application()
    app.router.add_route("*", "/dns-query", up.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    up.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield up, files
    finally:
        await runner.cleanup()

"""A DNS-over-HTTPS listener (RFC 8484), as CoreDNS's `https://` server blocks serve it.

Queries come to /dns-query as a GET with the message base64url-encoded in `?dns=`, or as a POST
with the message as the body; each goes through the same dispatcher as UDP and TCP queries (as
TCP: no truncation). The reply is application/dns-message with Cache-Control max-age set to its
lowest TTL. Any other path is 404, a request that carries no DNS message is 400, and a query
the server chose not to answer is 500. Without a TLS context this is plain HTTP, as CoreDNS
serves an `https://` block without `tls`, for use behind a proxy that terminates TLS.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import ssl
from collections.abc import Callable

from aiohttp import web

from kdns.dns import wire
from kdns.dns.message import NOERROR, NXDOMAIN
from kdns.dns.records import NS, OPT, SOA
from kdns.hostport import show
from kdns.transport.udp import Serve, client_ip

log = logging.getLogger("kdns.https")

PATH = "/dns-query"
MIME = "application/dns-message"
MAX_MESSAGE = 65535
MIN_TTL = 5  # CoreDNS's MinimalDefaultTTL: errors, and replies without records
MAX_TTL = 3600
IDLE_TIMEOUT = 120.0  # CoreDNS's DoH server idle timeout


def max_age(data: bytes) -> int:
    """Seconds a reply may be cached by HTTP caches: its lowest TTL, as CoreDNS computes it."""
    try:
        msg = wire.decode_message(data)
    except wire.WireError:
        return MIN_TTL
    records = [*msg.answer, *msg.authority, *(r for r in msg.additional if r.rtype != OPT)]
    if msg.rcode not in (NOERROR, NXDOMAIN) or not records:
        return MIN_TTL
    kinds = {r.rtype for r in msg.authority}
    if msg.rcode == NOERROR and not msg.answer and NS in kinds and SOA not in kinds:
        return MIN_TTL  # a referral
    return min(MAX_TTL, *(r.ttl for r in records))


class HttpsListener:
    """One DoH address: an aiohttp site whose only page is /dns-query."""

    def __init__(
        self,
        key: tuple[str, int],
        serve: Serve,
        tls: ssl.SSLContext | None,
        on_status: Callable[[int], None] | None = None,
    ) -> None:
        self.key = key
        self.serve = serve
        self.tls = tls
        self.on_status = on_status
        app = web.Application(client_max_size=MAX_MESSAGE)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1,
            keepalive_timeout=IDLE_TIMEOUT,
        )

    def _reply(self, status: int, body: bytes = b"", **headers: str) -> web.Response:
        if self.on_status is not None:
            self.on_status(status)
        if status != 200:
            return web.Response(status=status, text=body.decode() if body else None)
        return web.Response(body=body, content_type=MIME, headers=headers)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path != PATH:
            return self._reply(404)
        if request.method == "GET":
            values = request.query.getall("dns", [])
            if len(values) != 1:
                return self._reply(400, b"the dns query parameter must be given once\n")
            try:
                text = values[0]
                data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError):
                return self._reply(400, b"the dns query parameter is not base64url\n")
        elif request.method == "POST":
            try:
                data = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return self._reply(413)
        else:
            return self._reply(400, f"method not allowed: {request.method}\n".encode())
        if len(data) < 12:
            return self._reply(400, b"no DNS message\n")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client, port = (client_ip(str(peer[0])), int(peer[1])) if peer else ("", 0)
        out = await self.serve(data, "tcp", client, port)
        if out is None:
            return self._reply(500, b"No response\n")
        return self._reply(200, out, **{"Cache-Control": f"max-age={max_age(out)}"})

    async def open(self) -> None:
        await self.runner.setup()
        host, port = self.key
        site = web.TCPSite(
            self.runner, host or None, port, ssl_context=self.tls, reuse_address=True
        )
        try:
            await site.start()
        except BaseException:
            await self.runner.cleanup()
            raise
        kind = "https" if self.tls is not None else "http, no tls"
        log.info("dns: listening on %s (%s)", show(host, port), kind)

    def use(self, fast: object, known: object = None) -> None:
        """No fast path: every DoH query takes the full path."""

    def stop_accepting(self) -> None:
        """aiohttp stops accepting when it closes (below)."""

    async def drain(self) -> None:
        """aiohttp answers what it accepted while it closes (shutdown_timeout)."""

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.runner.cleanup()

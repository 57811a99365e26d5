"""HTTP listeners (for /health, /ready and /metrics), keyed by address, on aiohttp's sockets.

CoreDNS runs one listener per address however many server blocks configure it, and a reload that
keeps the address keeps the socket. Here each address gets one aiohttp site whose path table is
replaced on every reload, so probes and scrapes never see a closed port while the configuration
changes underneath.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from kdns.hostport import HostPort, show

log = logging.getLogger("kdns.http")

HttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Site:
    def __init__(self, addr: HostPort) -> None:
        self.addr = addr
        self.routes: dict[str, HttpHandler] = {}
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="404 page not found\n")
        return await handler(request)

    async def start(self) -> None:
        await self.runner.setup()
        host = self.addr[0] or None
        site = web.TCPSite(self.runner, host, self.addr[1], reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self.runner.cleanup()
            raise

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.runner.cleanup()


class HttpEndpoints:
    """HTTP listeners that outlive configurations; `configure` swaps their path tables."""

    def __init__(self) -> None:
        self.sites: dict[HostPort, _Site] = {}

    async def configure(self, wanted: Mapping[HostPort, Mapping[str, HttpHandler]]) -> None:
        """Open listeners for new addresses, update every path table, close unused addresses.

        Raises OSError if a new address cannot be bound; existing listeners are left as they were.
        """
        opened: list[_Site] = []
        try:
            for addr in wanted:
                if addr not in self.sites:
                    site = _Site(addr)
                    await site.start()
                    opened.append(site)
                    self.sites[addr] = site
                    log.info("http: listening on %s (%s)", show(*addr), ", ".join(wanted[addr]))
        except BaseException:
            for site in opened:
                self.sites.pop(site.addr, None)
                await site.close()
            raise
        for addr, routes in wanted.items():
            self.sites[addr].routes = dict(routes)
        for addr in [a for a in self.sites if a not in wanted]:
            await self.sites.pop(addr).close()

    async def close(self) -> None:
        for site in list(self.sites.values()):
            await site.close()
        self.sites.clear()

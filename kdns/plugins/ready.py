"""`ready [ADDRESS] { monitor until-ready|continuously }`: the readiness endpoint, `/ready`.

200 "OK" once every plugin of the blocks that enable `ready` reports ready (kubernetes: after
its first sync with the API), otherwise 503 with the comma-separated names of those that are not;
503 "Shutting down" once shutdown (lameduck) has begun. Default address `:8181`. With the default
`monitor until-ready` a plugin that was ready once is not asked again, as in CoreDNS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from kdns.corefile import Directive
from kdns.hostport import HostPort
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec, Readiness
from kdns.transport.http import HttpHandler

log = logging.getLogger("kdns")

DEFAULT_ADDRESS: HostPort = ("", 8181)


@dataclass(frozen=True, slots=True)
class ReadyConfig:
    address: HostPort = DEFAULT_ADDRESS
    continuously: bool = False


def parse(d: Directive, block: BlockInfo) -> ReadyConfig:
    parsing.arg_count(d, 0, 1, "ready [ADDRESS]")
    address = parsing.address(d.args[0]) if d.args else DEFAULT_ADDRESS
    continuously = False
    for sub in d.block or ():
        if sub.name != "monitor":
            raise parsing.unknown_property("ready", sub, ("monitor",))
        parsing.arg_count(sub, 1, 1, "monitor until-ready|continuously")
        mode = sub.args[0].text
        if mode not in ("until-ready", "continuously"):
            raise sub.args[0].error(
                f"monitor type {mode!r} not supported (expected until-ready or continuously)"
            )
        continuously = mode == "continuously"
    return ReadyConfig(address, continuously)


SPEC = PluginSpec("ready", parse, None)


def handler(
    members: Sequence[Readiness], continuously: bool, shutting_down: Callable[[], bool]
) -> HttpHandler:
    """The /ready handler over `members` (the ready-aware plugins of every block on one address)."""
    once: set[int] = set()  # ids of members that were ready (they live as long as this)

    async def ready(request: web.Request) -> web.StreamResponse:
        if shutting_down():
            return web.Response(status=503, text="Shutting down")
        waiting = set()
        for p in members:
            if not continuously and id(p) in once:
                continue
            if p.ready():
                once.add(id(p))
            else:
                waiting.add(p.name)
        if not waiting:
            return web.Response(text="OK")
        names = ",".join(sorted(waiting))
        log.info('plugin/ready: Plugins not ready: "%s"', names)
        return web.Response(status=503, text=names)

    return ready

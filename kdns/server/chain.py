"""Plugins composed into one Handler, in the order of `kdns.plugins.directives.SPECS`."""

from __future__ import annotations

from collections.abc import Sequence

from kdns.dns.message import SERVFAIL, Reply, Request
from kdns.plugins.base import Handler, Plugin


async def _no_plugin(request: Request) -> Reply:
    # CoreDNS's NextOrFailure: a query that falls off the end of the chain is a server failure.
    return Reply(rcode=SERVFAIL, error="no next plugin found")


def _link(plugin: Plugin, call_next: Handler) -> Handler:
    async def handler(request: Request) -> Reply:
        return await plugin(request, call_next)

    return handler


def build(plugins: Sequence[Plugin]) -> Handler:
    handler: Handler = _no_plugin
    for plugin in reversed(plugins):
        handler = _link(plugin, handler)
    return handler

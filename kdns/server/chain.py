"""Plugins composed into one Handler, in the order of `kdns.plugins.directives.SPECS`."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from kdns.dns.message import SERVFAIL, Reply, Request
from kdns.plugins.base import Handler, Plugin


async def _no_plugin(request: Request) -> Reply:
    # CoreDNS's NextOrFailure: a query that falls off the end of the chain is a server failure.
    return Reply(rcode=SERVFAIL, error="no next plugin found")


def _link(plugin: Plugin, call_next: Handler) -> Handler:
    # A partial, not a wrapping coroutine: calling it returns the plugin's own coroutine, so a
    # chain of N plugins runs N coroutines per query, not 2N.
    return functools.partial(plugin, call_next=call_next)


def build(plugins: Sequence[Plugin]) -> Handler:
    handler: Handler = _no_plugin
    for plugin in reversed(plugins):
        handler = _link(plugin, handler)
    return handler

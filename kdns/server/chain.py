"""Plugins composed into one Handler, in the order of `kdns.plugins.directives.SPECS`."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from kdns.dns.message import SERVFAIL, Reply, Request
from kdns.dns.records import CLASS_IN
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


def classes(plugins: Sequence[Plugin]) -> frozenset[int] | None:
    """The query classes a chain answers: IN, plus what plugins declare in `classes` (chaos:
    CH; None: any class). CoreDNS likewise refuses other classes unless chaos is loaded."""
    out = {CLASS_IN}
    for plugin in plugins:
        extra: frozenset[int] | None = getattr(plugin, "classes", frozenset())
        if extra is None:
            return None
        out |= extra
    return frozenset(out)

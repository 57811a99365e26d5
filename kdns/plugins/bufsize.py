"""`bufsize [SIZE]`: cap the UDP payload size a client advertised (CoreDNS's bufsize).

A query with an OPT record asking for more than SIZE (default 1232, the DNS flag day 2020
value; 512-4096) is served as if it had asked for SIZE: the reply advertises SIZE and is
truncated to it over UDP. Queries without EDNS, and TCP, are unaffected.
"""

from __future__ import annotations

from dataclasses import replace

from kdns.corefile import Directive
from kdns.dns.message import Reply, Request
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

DEFAULT_SIZE = 1232


def parse(d: Directive, block: BlockInfo) -> int:
    parsing.no_block(d)
    parsing.arg_count(d, 0, 1, "bufsize [SIZE]")
    if not d.args:
        return DEFAULT_SIZE
    return parsing.integer(d.args[0], 512, 4096, "bufsize SIZE")


class BufsizePlugin:
    name = "bufsize"

    def __init__(self, size: int) -> None:
        self.size = size

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        edns = request.edns
        if edns is None or edns.udp_size <= self.size:
            return await call_next(request)
        # Later plugins see the lowered size too (CoreDNS rewrites the request's OPT in place).
        reply = await call_next(replace(request, edns=replace(edns, udp_size=self.size)))
        return replace(reply, size_cap=self.size)


def build(size: int, ctx: BuildContext) -> BufsizePlugin:
    return BufsizePlugin(size)


SPEC = PluginSpec("bufsize", parse, build)

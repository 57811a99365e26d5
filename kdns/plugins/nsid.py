"""`nsid [DATA]`: identify this server in replies to clients that ask (RFC 5001, CoreDNS's nsid).

A query carrying the NSID EDNS option gets DATA (default: the host name; several words are
joined with spaces) in the NSID option of the reply's OPT record. Other queries are untouched.
"""

from __future__ import annotations

import platform
from dataclasses import replace

from kdns.corefile import Directive
from kdns.dns.message import OPT_NSID, Reply, Request
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec


def parse(d: Directive, block: BlockInfo) -> bytes:
    parsing.no_block(d)
    if d.args:
        return " ".join(d.values).encode()
    # The node name is the host name gethostname() gives, without a socket import here.
    return (platform.node() or "localhost").encode()


class NsidPlugin:
    name = "nsid"

    def __init__(self, data: bytes) -> None:
        self.option = (OPT_NSID, data)

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        reply = await call_next(request)
        if request.edns is None or not request.edns.has(OPT_NSID):
            return reply
        others = tuple(o for o in reply.options if o[0] != OPT_NSID)
        return replace(reply, options=(*others, self.option))


def build(data: bytes, ctx: BuildContext) -> NsidPlugin:
    return NsidPlugin(data)


SPEC = PluginSpec("nsid", parse, build)

"""`any`: answer ANY queries with one HINFO record, as RFC 8482 allows (CoreDNS's any).

`<qname> 8482 IN HINFO "ANY obsoleted" "See RFC 8482"`; other types go to the next plugin.
"""

from __future__ import annotations

from kdns.corefile import Directive
from kdns.dns import records
from kdns.dns.message import NOERROR, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

_HINFO = b"\x0dANY obsoleted\x0cSee RFC 8482"


def parse(d: Directive, block: BlockInfo) -> None:
    parsing.no_args(d)
    parsing.no_block(d)


class AnyPlugin:
    name = "any"

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        if request.qtype != records.ANY:
            return await call_next(request)
        replay = memo.get()
        if replay is not None:
            replay.allow()
        answer = (records.RR(request.qname, records.HINFO, 8482, _HINFO),)
        return Reply(NOERROR, answer, plugin=self.name)


def build(config: None, ctx: BuildContext) -> AnyPlugin:
    return AnyPlugin()


SPEC = PluginSpec("any", parse, build)

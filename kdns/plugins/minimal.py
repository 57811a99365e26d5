"""`minimal`: send only the answer section of positive replies (CoreDNS's minimal).

A NOERROR reply with records in its answer (or with neither SOA nor NS in its authority) loses
its authority and additional sections. Negative replies (NXDOMAIN, NODATA with SOA), errors and
delegations (NS in authority, glue in additional) pass unchanged; so do zone transfers.
"""

from __future__ import annotations

from kdns.corefile import Directive
from kdns.dns import records
from kdns.dns.message import NOERROR, Reply, Request
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec


def parse(d: Directive, block: BlockInfo) -> None:
    parsing.no_args(d)
    parsing.no_block(d)


def _positive(reply: Reply) -> bool:
    """CoreDNS's response.Typify(...) == NoError."""
    if reply.rcode != NOERROR:
        return False
    if reply.answer:
        return True
    return not any(r.rtype in (records.SOA, records.NS) for r in reply.authority)


class MinimalPlugin:
    name = "minimal"

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        reply = await call_next(request)
        if request.qtype in (records.AXFR, records.IXFR) or not _positive(reply):
            return reply
        if not reply.authority and not reply.additional:
            return reply
        return reply.with_records(reply.answer, (), ())


def build(config: None, ctx: BuildContext) -> MinimalPlugin:
    return MinimalPlugin()


SPEC = PluginSpec("minimal", parse, build)

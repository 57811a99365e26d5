"""`loadbalance [round_robin]`: shuffle address records in every reply, as CoreDNS does.

A, AAAA and MX records are shuffled in the answer, authority and additional sections of every
NOERROR reply (cache hits included: this plugin runs before `cache`), so clients that take the
first address spread over a headless service's endpoints. CNAMEs stay first and other records
keep their place ahead of the shuffled ones (glibc follows CNAME chains in order).
"""

from __future__ import annotations

import random
from dataclasses import replace

from kdns.corefile import Directive
from kdns.dns.message import NOERROR, Reply, Request
from kdns.dns.records import AAAA, CNAME, MX, RR, A
from kdns.dns.transfer import TYPES as TRANSFER_TYPES
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

_SHUFFLED = (A, AAAA)


def parse(d: Directive, block: BlockInfo) -> str:
    parsing.no_block(d)
    if not d.args:
        return "round_robin"
    policy = d.args[0].text
    if policy in ("weighted", "prefer"):
        raise d.args[0].error(f'loadbalance policy "{policy}" is not supported (use round_robin)')
    if policy != "round_robin" or len(d.args) > 1:
        raise d.args[0].error(f"unknown loadbalance policy {policy!r} (expected round_robin)")
    return policy


def round_robin(records: tuple[RR, ...]) -> tuple[RR, ...]:
    if len(records) < 2:
        return records
    cnames: list[RR] = []
    addresses: list[RR] = []
    mx: list[RR] = []
    rest: list[RR] = []
    for rr in records:
        if rr.rtype == CNAME:
            cnames.append(rr)
        elif rr.rtype in _SHUFFLED:
            addresses.append(rr)
        elif rr.rtype == MX:
            mx.append(rr)
        else:
            rest.append(rr)
    if len(addresses) < 2 and len(mx) < 2:
        return records
    random.shuffle(addresses)
    random.shuffle(mx)
    return (*cnames, *rest, *addresses, *mx)


class LoadbalancePlugin:
    name = "loadbalance"

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        reply = await call_next(request)
        if reply.rcode != NOERROR or request.qtype in TRANSFER_TYPES:
            return reply  # a zone transfer keeps its order (SOA first and last), as in CoreDNS
        note = memo.get()
        if note is not None:
            note.shuffle = True  # replies re-served from bytes rotate the records on every hit
        return replace(
            reply,
            answer=round_robin(reply.answer),
            authority=round_robin(reply.authority),
            additional=round_robin(reply.additional),
        )


def build(config: str, ctx: BuildContext) -> LoadbalancePlugin:
    return LoadbalancePlugin()


SPEC = PluginSpec("loadbalance", parse, build)

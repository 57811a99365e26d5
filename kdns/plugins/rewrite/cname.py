"""`rewrite [continue|stop] cname [exact|prefix|suffix|substring|regex] FROM TO`: a CNAME target
in the reply swapped for another, whose records are then looked up (CoreDNS's cname target rule).

The rule applies to every question (so in `stop` mode no rule after it runs, as in CoreDNS). In
the reply, the first CNAME whose target FROM matches (compared lower-cased; `exact` compares the
whole target, trailing dot included) has its target replaced by TO, and so has every other CNAME
of the answer; the records the whole server gives for TO (same type as the question) follow
them. A reply carrying such an answer has the lifetime of the lookup, so it is not re-served
from the fast path.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from kdns.corefile import Token
from kdns.dns import names
from kdns.dns.message import Reply, Request
from kdns.dns.records import CNAME, RR, rdata_text
from kdns.plugins import memo
from kdns.plugins.base import Handler
from kdns.plugins.rewrite.answers import substitute
from kdns.plugins.rewrite.rules import KINDS, Applied, compile_regex

log = logging.getLogger("kdns.rewrite")


@dataclass(frozen=True, slots=True)
class Follow:
    """An asynchronous response rule: the reply, with the new target's records looked up."""

    rule: CnameRule
    request: Request

    async def __call__(self, reply: Reply) -> Reply:
        return await self.rule.follow(self.request, reply)


@dataclass(frozen=True, slots=True)
class CnameRule:
    mode: str
    kind: str
    source: str
    target: str
    pattern: re.Pattern[str] | None = None
    lookup: Handler | None = None  # the whole server, set when the plugin is built
    per_client = False

    def new_target(self, old: str) -> str | None:
        low = old.lower()
        if self.kind == "exact":
            return self.target if low == self.source else None
        if self.kind == "prefix" and low.startswith(self.source):
            return self.target + low[len(self.source) :]
        if self.kind == "suffix" and low.endswith(self.source):
            return low[: len(low) - len(self.source)] + self.target
        if self.kind == "substring" and self.source in low:
            return low.replace(self.source, self.target)
        if self.kind == "regex":
            assert self.pattern is not None
            found = self.pattern.search(low)
            return None if found is None else substitute(self.target, found)
        return None

    def apply(self, request: Request) -> Applied | None:
        return request, (Follow(self, request),)

    async def follow(self, request: Request, reply: Reply) -> Reply:
        hit = next(
            (t for t in (self.new_target(rdata_text(r)) for r in reply.answer if r.rtype == CNAME)
             if t is not None),
            None,
        )  # fmt: skip
        if hit is None or self.lookup is None:
            return reply
        hit = names.normalize(hit)
        try:
            wire = names.to_wire(hit)
        except ValueError:
            return reply  # not a name: the reply stays as it was
        memo.deny()  # the new target's records have their own lifetime
        answer: list[RR] = [
            RR(r.name, r.rtype, r.ttl, wire, r.rclass) for r in reply.answer if r.rtype == CNAME
        ]
        try:
            found = await self.lookup(request.with_question(hit))
        except Exception as exc:  # the rewritten CNAME alone is still an answer
            log.debug("rewrite cname: looking up %s failed: %s", hit, exc)
        else:
            answer.extend(r for r in found.answer if r.name.lower() == hit)
        return reply.with_records(tuple(answer), reply.authority, reply.additional)


def parse_cname(mode: str, head: Token, args: list[Token]) -> CnameRule:
    if len(args) not in (2, 3):
        raise head.error(
            f"wrong number of arguments ({len(args)}) for a cname rule: "
            "usage: cname [exact|prefix|suffix|substring|regex] FROM TO"
        )
    kind = args[0].text.lower() if len(args) == 3 else "exact"
    if kind not in KINDS:
        raise args[0].error(f"unknown cname rewrite type: {args[0].text} ({', '.join(KINDS)})")
    source, target = args[-2], args[-1].text.lower()
    if kind == "regex":
        return CnameRule(mode, kind, source.text, target, compile_regex(source, target))
    return CnameRule(mode, kind, source.text.lower(), target)

"""`rewrite [continue|stop] name|type|class|edns0|ttl|rcode|cname ...`: the question changed on
its way to the plugins after rewrite, and their reply changed back, as CoreDNS's `rewrite`.

Rules run in Corefile order (all `rewrite` lines of a block make one plugin). A rule that applies
hands the rewritten request to the next rule if its mode is `continue`, or straight to the next
plugin if it is `stop` (the default). A block `rewrite [continue|stop] { ... }` is one rule whose
tokens are the lines of the block, read in a row (`name regex ...` then `answer name ...`).

The reply always shows the client's own question: the encoder writes the question of the request
the client sent, never the rewritten one. Names in the records are mapped back by `answer auto`
(and for every `exact` name rule), `answer name FROM TO` and `answer value FROM TO`, in reverse
order of the rules that asked for them. A rewrite that yields an invalid name is a SERVFAIL.

Re-serving is safe: the cache and the fast path both sit before rewrite and key a reply by the
client's question, and the reply they keep is the one already mapped back. Only rules whose
effect depends on the client (edns0 {client_ip}, {client_port}, {protocol}, subnet) and a cname
rule's lookup keep the reply off the fast path.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Protocol

from kdns.corefile import Directive, Token
from kdns.dns.message import SERVFAIL, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec
from kdns.plugins.rewrite import rules
from kdns.plugins.rewrite.cname import CnameRule, parse_cname
from kdns.plugins.rewrite.edns0 import Edns0Rule, Site, parse_edns0
from kdns.plugins.rewrite.rules import CONTINUE, STOP, Applied, Undo

log = logging.getLogger("kdns.rewrite")

FIELDS = ("name", "type", "class", "edns0", "ttl", "rcode", "cname")


class Rule(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def per_client(self) -> bool: ...

    def apply(self, request: Request) -> Applied | None: ...


def _tokens(d: Directive) -> list[Token]:
    """The rule's tokens: the arguments, or for `rewrite [continue|stop] { ... }` the lines of
    the block in a row, each token keeping its own line for errors."""
    tokens = list(d.args)
    if d.block is None:
        return tokens
    if len(tokens) > 1:
        raise d.block[0].error(
            "rewrite takes a block only as `rewrite [continue|stop] { ... }`, "
            "with the rule inside the block"
        )
    for sub in d.block:
        if sub.block is not None:
            raise sub.error(f"rewrite: {sub.name!r} takes no block")
        tokens.append(Token(sub.name, sub.file, sub.line))
        tokens.extend(sub.args)
    return tokens


def rule(d: Directive, tokens: list[Token]) -> Rule:
    """One rule from its tokens (CoreDNS's newRule)."""
    if not tokens:
        raise d.error(
            "no rule type specified for rewrite: usage: rewrite [continue|stop] FIELD ..."
        )
    first = tokens[0].text.lower()
    mode = STOP
    if first in (STOP, CONTINUE):
        if len(tokens) < 2:
            raise tokens[0].error(f"{first} rule must begin with a rule type ({', '.join(FIELDS)})")
        mode = first
        tokens = tokens[1:]
    head, args = tokens[0], tokens[1:]
    field = head.text.lower()
    if field == "name":
        return rules.parse_name(mode, head, args)
    if field == "type":
        return rules.parse_type(mode, head, args)
    if field == "class":
        return rules.parse_class(mode, head, args)
    if field == "edns0":
        return parse_edns0(mode, head, args)
    if field == "ttl":
        return rules.parse_ttl(mode, head, args)
    if field == "rcode":
        return rules.parse_rcode(mode, head, args)
    if field == "answer":
        raise head.error("response rewrites must begin with a name rule")
    if field == "cname":
        return parse_cname(mode, head, args)
    raise head.error(f"invalid rule type {head.text!r} (expected one of: {', '.join(FIELDS)})")


def parse(d: Directive, block: BlockInfo) -> tuple[Rule, ...]:
    return (rule(d, _tokens(d)),)


def merge(first: tuple[Rule, ...], later: tuple[Rule, ...]) -> Any:
    return first + later  # one plugin, its rules in Corefile order


def _placed(rule: Rule, site: Site, ctx: BuildContext) -> Rule:
    """The rule with what only the built server knows: where it listens, how to look up."""
    if isinstance(rule, Edns0Rule):
        return replace(rule, site=site)
    if isinstance(rule, CnameRule):
        return replace(rule, lookup=ctx.lookup)
    return rule


class RewritePlugin:
    name = "rewrite"

    def __init__(self, config: tuple[Rule, ...], ctx: BuildContext) -> None:
        bound = [a for a in ctx.bind if a not in ("", "0.0.0.0", "::")]
        site = Site(bound[0] if len(bound) == 1 == len(ctx.bind) else None, ctx.block.port)
        self.rules = tuple(_placed(r, site, ctx) for r in config)
        if site.ip is None and any(
            isinstance(r, Edns0Rule) and r.variable == "{server_ip}" for r in self.rules
        ):
            parsing.no_effect(
                log, "rewrite edns0 {server_ip}", "the block listens on more than one address"
            )
        # Class rules let their FROM class into the chain (CoreDNS refuses other classes
        # before any plugin sees them, unless a plugin answers them).
        self.classes = frozenset(r.old for r in self.rules if isinstance(r, rules.ClassRule))

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        work = request
        undo: list[Undo] = []
        per_client = False
        for r in self.rules:
            try:
                applied = r.apply(work)
            except ValueError as exc:  # the new name is not a valid domain name
                memo.deny()
                return Reply(SERVFAIL, plugin=self.name, error=f"invalid name after rewrite: {exc}")
            if applied is None:
                continue
            work, responses = applied
            undo.extend(responses)
            per_client = per_client or r.per_client
            if r.mode == STOP:
                break
        if per_client:
            memo.deny()
        reply = await call_next(work)
        for response in reversed(undo):
            out = response(reply)
            reply = out if isinstance(out, Reply) else await out
        return reply


def build(config: tuple[Rule, ...], ctx: BuildContext) -> RewritePlugin:
    return RewritePlugin(config, ctx)


SPEC = PluginSpec("rewrite", parse, build, repeatable=True, merge=merge)

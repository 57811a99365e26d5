"""`acl [ZONES...] { ACTION [type QTYPE...] [net SOURCE...] }`: per-client access control.

As CoreDNS's acl: rules (one `acl` directive each, several allowed) are checked in order for
queries in their zones (default: the server block's); within a rule the first policy whose
types and networks match decides. `allow` stops checking and lets the query through, `block`
answers REFUSED with extended DNS error 15 (Blocked), `filter` answers NOERROR with no records
and extended error 17 (Filtered), `drop` sends nothing. A query no policy matches is allowed.
`type *` / no `type` means every type; `net *` / no `net` every IPv4 and IPv6 source; a bare
address means that one host. Answers in a rule's zones depend on the client's address, so they
are never re-served from stored bytes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kdns import metrics
from kdns.corefile import Directive, Token
from kdns.dns import names, records
from kdns.dns.message import DROP, NOERROR, OPT_EDE, REFUSED, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

ACTIONS = ("allow", "block", "filter", "drop")
EDE_BLOCKED = 15
EDE_FILTERED = 17
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Policy:
    action: str
    qtypes: frozenset[int] | None  # None: every type
    nets: tuple[Network, ...] | None  # None: every source


@dataclass(frozen=True, slots=True)
class Rule:
    zones: tuple[str, ...]
    policies: tuple[Policy, ...]


def _network(tok: Token) -> Network:
    try:
        return ipaddress.ip_network(tok.text, strict=False)
    except ValueError:
        raise tok.error(f"illegal CIDR notation {tok.text!r}") from None


def _qtype(tok: Token) -> int:
    try:
        return records.type_from_text(tok.text)
    except ValueError:
        raise tok.error(f"unexpected token {tok.text!r}; expect legal QTYPE") from None


def _policy(sub: Directive) -> Policy:
    action = sub.name.lower()
    if action not in ACTIONS:
        raise sub.error(
            f"unexpected token {sub.name!r}; expect 'allow', 'block', 'filter' or 'drop'"
        )
    qtypes: set[int] | None = set()
    nets: list[Network] | None = []
    args = list(sub.args)
    while args:
        section = args.pop(0)
        values: list[Token] = []
        while args and args[0].text.lower() not in ("type", "net"):
            values.append(args.pop(0))
        if section.text.lower() not in ("type", "net"):
            raise section.error(f"unexpected token {section.text!r}; expect 'type | net'")
        if not values:
            raise section.error(f"no token specified in {section.text.lower()!r} section")
        for tok in values:
            if section.text.lower() == "type":
                if tok.text == "*":
                    qtypes = None
                elif qtypes is not None:
                    qtypes.add(_qtype(tok))
            elif tok.text == "*":
                nets = None
            elif nets is not None:
                nets.append(_network(tok))
    return Policy(
        action,
        None if not qtypes else frozenset(qtypes),
        None if not nets else tuple(nets),
    )


def parse(d: Directive, block: BlockInfo) -> tuple[Rule, ...]:
    zones = parsing.zones(d.args, block.zones)
    policies = tuple(_policy(sub) for sub in d.block or ())
    return (Rule(zones, policies),)


def _decide(policies: tuple[Policy, ...], request: Request) -> str | None:
    try:
        ip = ipaddress.ip_address(request.client.split("%", 1)[0])
    except ValueError:
        return "block"  # CoreDNS blocks a source address it cannot read
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for p in policies:
        if p.qtypes is not None and request.qtype not in p.qtypes:
            continue
        if p.nets is not None and not any(ip in n for n in p.nets):
            continue
        return p.action
    return None


class AclPlugin:
    name = "acl"

    def __init__(self, rules: tuple[Rule, ...], ctx: BuildContext) -> None:
        self.rules = rules
        self.server = ctx.server
        reg = ctx.registry
        self._counters = {
            "block": metrics.counter(
                reg,
                "coredns_acl_blocked_requests_total",
                "Counter of DNS requests being blocked.",
                ("server", "zone", "view"),
            ),
            "filter": metrics.counter(
                reg,
                "coredns_acl_filtered_requests_total",
                "Counter of DNS requests being filtered.",
                ("server", "zone", "view"),
            ),
            "drop": metrics.counter(
                reg,
                "coredns_acl_dropped_requests_total",
                "Counter of DNS requests being dropped.",
                ("server", "zone", "view"),
            ),
        }
        self._allowed = metrics.counter(
            reg,
            "coredns_acl_allowed_requests_total",
            "Counter of DNS requests being allowed.",
            ("server", "view"),
        )

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        for rule in self.rules:
            zone = names.longest_zone(request.name, rule.zones)
            if zone is None:
                continue
            memo.deny()  # the outcome depends on who asks
            action = _decide(rule.policies, request)
            if action == "allow":
                break
            if action is None:
                continue
            self._counters[action].labels(self.server, zone, "").inc()
            if action == "drop":
                return Reply(DROP, plugin=self.name)
            if action == "block":
                return Reply(REFUSED, options=((OPT_EDE, EDE_BLOCKED.to_bytes(2, "big")),))
            return Reply(NOERROR, options=((OPT_EDE, EDE_FILTERED.to_bytes(2, "big")),))
        self._allowed.labels(self.server, "").inc()
        return await call_next(request)


def build(rules: tuple[Rule, ...], ctx: BuildContext) -> AclPlugin:
    return AclPlugin(rules, ctx)


def merge(first: tuple[Rule, ...], later: tuple[Rule, ...]) -> tuple[Rule, ...]:
    return first + later  # one plugin: an `allow` in an earlier rule skips the later ones


SPEC = PluginSpec("acl", parse, build, repeatable=True, merge=merge)

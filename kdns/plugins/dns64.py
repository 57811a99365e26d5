"""`dns64 [PREFIX] { prefix PREFIX; translate_all; allow_ipv4; filter_a }`: AAAA synthesis
(RFC 6147).

As CoreDNS's dns64: an IN AAAA query from an IPv6 client (any client with `allow_ipv4`) goes down
the chain; if the reply has no AAAA record (or always, with `translate_all`) and is not
NXDOMAIN, the name's A records are looked up through the whole server and each becomes an AAAA
inside PREFIX (default the well-known 64:ff9b::/96; a /32, /40, /48, /56, /64 or /96, with the
IPv4 address placed as RFC 6052 section 2.2 says). Each synthesized record's TTL is the lower of
the A record's and the AAAA reply's SOA TTL (600 when it had none, section 5.1.7); the A reply's
authority and additional sections and its TC bit are passed on, other answer records (CNAMEs)
unchanged. As in CoreDNS, the synthesized reply is NOERROR without the AA and RA flags, and
carries extended DNS error 29 (Synthesized) when the query had EDNS.

`filter_a` answers the same clients' IN A queries NOERROR without records, with the SOA an
internal SOA lookup of the name finds (none if it finds none) and extended error 17 (Filtered)
when the query had EDNS; the plugin's own A and SOA lookups are exempt. Counted in
`coredns_dns64_requests_translated_total{server}` and `coredns_dns64_requests_filtered_total`.
"""

from __future__ import annotations

import contextvars
import ipaddress
from dataclasses import dataclass

from kdns import metrics
from kdns.corefile import Directive, Token
from kdns.dns import records
from kdns.dns.message import NOERROR, NXDOMAIN, OPT_EDE, EdnsOption, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 6052 section 2.2: the prefix lengths an IPv4-embedded IPv6 address may use.
LENGTHS = (32, 40, 48, 56, 64, 96)
# Section 5.1.7: the TTL cap when the AAAA reply carried no SOA.
NO_SOA_TTL = 600
OPTIONS = ("prefix", "translate_all", "allow_ipv4", "filter_a")
# RFC 8914 extended DNS errors, with CoreDNS's texts.
EDE_SYNTHESIZED = 29
EDE_FILTERED = 17
SYNTHESIZED_TEXT = "DNS64 synthesised this response from A records"
FILTERED_TEXT = "dns64 filter_a: A records suppressed"

# Set while the plugin's own lookups (A for synthesis, SOA for filter_a) run through the
# server: filter_a must not answer them.
_internal: contextvars.ContextVar[bool] = contextvars.ContextVar("kdns_dns64", default=False)


@dataclass(frozen=True, slots=True)
class Dns64Config:
    prefix: ipaddress.IPv6Network = WELL_KNOWN
    translate_all: bool = False
    allow_ipv4: bool = False
    filter_a: bool = False


def ede(code: int, text: str) -> EdnsOption:
    return (OPT_EDE, code.to_bytes(2, "big") + text.encode())


def _prefix(tok: Token) -> ipaddress.IPv6Network:
    try:
        net = ipaddress.ip_network(tok.text, strict=False)
    except ValueError:
        raise tok.error(f"invalid CIDR address {tok.text!r}") from None
    if not isinstance(net, ipaddress.IPv6Network):
        raise tok.error(f"dns64 prefix must be IPv6, got {tok.text!r}")
    if net.prefixlen not in LENGTHS:
        raise tok.error(
            f"invalid prefix length /{net.prefixlen} in {tok.text!r} "
            f"(RFC 6052 allows {', '.join(f'/{n}' for n in LENGTHS)})"
        )
    return net


def parse(d: Directive, block: BlockInfo) -> Dns64Config:
    parsing.arg_count(d, 0, 1, "dns64 [PREFIX]")
    prefix = _prefix(d.args[0]) if d.args else WELL_KNOWN
    translate_all = allow_ipv4 = filter_a = False
    for sub in d.block or ():
        if sub.name == "prefix":
            parsing.arg_count(sub, 1, 1, "prefix PREFIX")
            prefix = _prefix(sub.args[0])
        elif sub.name == "translate_all":
            parsing.no_args(sub)
            translate_all = True
        elif sub.name == "allow_ipv4":
            parsing.no_args(sub)
            allow_ipv4 = True
        elif sub.name == "filter_a":
            parsing.no_args(sub)
            filter_a = True
        else:
            raise parsing.unknown_property("dns64", sub, OPTIONS)
        parsing.no_block(sub)
    return Dns64Config(prefix, translate_all, allow_ipv4, filter_a)


def embed(prefix: ipaddress.IPv6Network, ipv4: bytes) -> bytes:
    """The IPv4 address (4 bytes) inside `prefix` (RFC 6052 section 2.2): after the prefix's
    bytes, skipping bits 64-71 (the "u" octet, always zero), the rest zero."""
    n = prefix.prefixlen // 8
    head = prefix.network_address.packed[:n]
    if n > 8:  # a /96: the address follows the prefix
        return head + ipv4
    split = 8 - n
    return (head + ipv4[:split] + b"\x00" + ipv4[split:]).ljust(16, b"\x00")


def _from_ipv4(client: str) -> bool:
    # CoreDNS asks net.IP.To4(): an IPv4-mapped address (a dual-stack socket) is IPv4.
    return ":" not in client or (client.startswith("::ffff:") and "." in client)


def wants_translation(reply: Reply, translate_all: bool) -> bool:
    """RFC 6147 5.1.1-5.1.2: synthesize unless the name does not exist or (without
    translate_all) the reply already holds an AAAA. Other errors count as an empty answer."""
    if reply.rcode == NXDOMAIN:
        return False
    return translate_all or not any(r.rtype == records.AAAA for r in reply.answer)


def synthesize(
    prefix: ipaddress.IPv6Network, aaaa: Reply, a: Reply, options: tuple[EdnsOption, ...] = ()
) -> Reply:
    """The AAAA reply made from the A reply `a`, `aaaa` being the reply that had none."""
    cap = next((r.ttl for r in reversed(aaaa.authority) if r.rtype == records.SOA), NO_SOA_TTL)
    answer = tuple(
        records.RR(r.name, records.AAAA, min(r.ttl, cap), embed(prefix, r.rdata), r.rclass)
        if r.rtype == records.A and len(r.rdata) == 4
        else r
        for r in a.answer
    )
    return Reply(
        NOERROR, answer, a.authority, a.additional, tc=a.tc, plugin="dns64", options=options
    )


def first_soa(reply: Reply) -> records.RR | None:
    """The SOA of a reply to an SOA question: in the answer at a zone apex, else in authority."""
    return next((r for r in reply.answer + reply.authority if r.rtype == records.SOA), None)


class Dns64Plugin:
    name = "dns64"

    def __init__(self, config: Dns64Config, ctx: BuildContext) -> None:
        self.config = config
        self._lookup = ctx.lookup
        self._translated = metrics.counter(
            ctx.registry,
            "coredns_dns64_requests_translated_total",
            "Counter of DNS requests translated by dns64.",
            ("server",),
        ).labels(ctx.server)
        self._filtered = metrics.counter(
            ctx.registry,
            "coredns_dns64_requests_filtered_total",
            "Counter of client A queries suppressed by dns64 filter_a.",
            ("server",),
        ).labels(ctx.server)

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        if request.qclass != records.CLASS_IN:
            return await call_next(request)
        if request.qtype == records.AAAA:
            return await self._aaaa(request, call_next)
        if request.qtype == records.A and self.config.filter_a and not _internal.get():
            return await self._filter(request, call_next)
        return await call_next(request)

    def _eligible(self, request: Request) -> bool:
        if self.config.allow_ipv4:
            return True
        # The same question bytes get another answer from a client of the other family.
        memo.deny()
        return not _from_ipv4(request.client)

    async def _inner(self, request: Request, qtype: int) -> Reply:
        token = _internal.set(True)
        try:
            return await self._lookup(request.with_question(request.qname, qtype))
        finally:
            _internal.reset(token)

    def _count(self, counter: metrics.Cell) -> None:
        counter.inc()
        replay = memo.get()
        if replay is not None:
            replay.on_hit.append(counter.inc)  # answers re-served still count

    async def _aaaa(self, request: Request, call_next: Handler) -> Reply:
        cfg = self.config
        reply = await call_next(request)
        if not wants_translation(reply, cfg.translate_all) or not self._eligible(request):
            return reply
        a = await self._inner(request, records.A)
        self._count(self._translated)
        options = (ede(EDE_SYNTHESIZED, SYNTHESIZED_TEXT),) if request.edns is not None else ()
        return synthesize(cfg.prefix, reply, a, options)

    async def _filter(self, request: Request, call_next: Handler) -> Reply:
        if not self._eligible(request):
            return await call_next(request)
        soa = first_soa(await self._inner(request, records.SOA))
        self._count(self._filtered)
        return Reply(
            NOERROR,
            authority=(soa,) if soa is not None else (),
            plugin=self.name,
            options=(ede(EDE_FILTERED, FILTERED_TEXT),) if request.edns is not None else (),
        )


def build(config: Dns64Config, ctx: BuildContext) -> Dns64Plugin:
    return Dns64Plugin(config, ctx)


SPEC = PluginSpec("dns64", parse, build)

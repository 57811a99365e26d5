"""`transfer [ZONES...] { to HOST... }`: outgoing zone transfers (AXFR, and IXFR answered in
full), as CoreDNS's `transfer` plugin, for the zones other plugins of the block serve.

The records come from the plugins of the server block that implement `Transferer` (`file`,
`kubernetes`), asked in chain order; the first that has the zone gives it. ZONES default to the
block's; the longest of them that holds the question decides which `to` list applies. HOST is
an IP address, optionally with a port (ignored: only the client's address is compared, as
CoreDNS does), or `*` for any client. A transfer to another client, or over UDP, is REFUSED;
an AXFR/IXFR for a zone no transferer has goes on down the chain (where `file` and `kubernetes`
refuse it). An IXFR whose SOA (in the query's authority section) carries the zone's current
serial is answered with that SOA alone ("up to date"); any other IXFR gets the whole zone, as
an AXFR would (CoreDNS has no incremental history either). The transport splits the records
over as many TCP messages as needed (kdns.dns.transfer). Notifies to secondaries are not sent.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kdns.corefile import Directive, Token
from kdns.dns import names, zone
from kdns.dns.message import NOERROR, REFUSED, SERVFAIL, Reply, Request
from kdns.dns.records import IXFR, RR, SOA, is_address
from kdns.dns.transfer import TYPES
from kdns.hostport import split
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

log = logging.getLogger("kdns.transfer")

ANY_CLIENT = "*"


@runtime_checkable
class Transferer(Protocol):
    """A plugin that can give every record of a zone it serves, for an outgoing zone transfer
    (CoreDNS's transfer.Transferer).

    `transfer(zone)` gets the zone asked for: lower case, absolute (`example.org.`). It returns:

    - None when the plugin is not authoritative for exactly that zone (a name inside one of its
      zones is not enough): the transfer plugin then asks the next transferer of the block.
    - Otherwise the whole zone as it is now, in transfer order: the zone's SOA first, then
      every other record (the apex NS and their glue included), and the same SOA again last
      (RFC 5936 section 2.2). Owner names are absolute. The sequence must not change after it
      is returned (build a new one per call, or return an immutable snapshot): the transport
      sends it in several messages after the call returns.

    The call is synchronous and must not block on I/O: serve it from data already in memory.
    The SOA's serial is what an IXFR is compared with, so it must change when the zone does.
    """

    def transfer(self, zone: str) -> Sequence[RR] | None: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """One `transfer` line: its zones and the clients they may be transferred to."""

    zones: tuple[str, ...]
    to: tuple[str, ...]  # IP addresses, or "*"

    def allows(self, client: str) -> bool:
        return ANY_CLIENT in self.to or client in self.to


def parse(d: Directive, block: BlockInfo) -> tuple[Rule, ...]:
    zones = parsing.zones(d.args, block.zones)
    to: list[str] = []
    for sub in d.block or ():
        if sub.name != "to":
            raise parsing.unknown_property("transfer", sub, ("to",))
        parsing.no_block(sub)
        if not sub.args:
            raise sub.error("wrong number of arguments for to: usage: to HOST...")
        to.extend(_host(tok) for tok in sub.args)
    if not to:
        raise d.error("transfer: 'to' is required (e.g. transfer { to * })")
    return (Rule(zones, tuple(dict.fromkeys(to))),)


def _host(tok: Token) -> str:
    """`*`, or an IP address with an optional port, as CoreDNS reads a `to` host."""
    text = tok.text
    if text == ANY_CLIENT:
        return text
    host = text
    if not is_address(text):
        try:
            host, port = split(text)
        except ValueError:
            host, port = text, "53"
        if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise tok.error(f"transfer: invalid port in {text!r}")
    if not is_address(host):
        raise tok.error(f"transfer: {text!r} is not an IP address (or *)")
    return str(ipaddress.ip_address(host))


def merge(first: tuple[Rule, ...], later: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """Several `transfer` lines in one block: one plugin, each line's zones with its hosts."""
    return first + later


class TransferPlugin:
    name = "transfer"

    def __init__(self, rules: tuple[Rule, ...], ctx: BuildContext) -> None:
        self.rules = rules
        self._zones = tuple(z for r in rules for z in r.zones)
        # The plugins after this one are built already: a block is built back to front, so
        # `built` holds them in reverse chain order.
        self.sources: tuple[Transferer, ...] = tuple(
            p for p in reversed(list(ctx.built.values())) if isinstance(p, Transferer)
        )

    def _rule(self, name: str) -> Rule | None:
        best = names.longest_zone(name, self._zones)
        return None if best is None else next(r for r in self.rules if best in r.zones)

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        if request.qtype not in TYPES:
            return await call_next(request)
        memo.deny()  # never re-served from bytes: who asks and the zone's state both matter
        if request.proto != "tcp":
            return Reply(rcode=REFUSED, plugin=self.name)
        rule = self._rule(request.name)
        if rule is None:
            return await call_next(request)
        if not rule.allows(request.client):
            # Debug only: a client asking again and again must not flood the log (`log` shows
            # the REFUSED replies).
            log.debug("plugin/transfer: refused transfer of %s to %s", request.name, request.client)
            return Reply(rcode=REFUSED, plugin=self.name)
        records = next(
            (r for s in self.sources if (r := s.transfer(request.name)) is not None), None
        )
        if records is None:
            return await call_next(request)
        if not records or records[0].rtype != SOA:
            return Reply(rcode=SERVFAIL, plugin=self.name, error="transfer: zone has no SOA")
        soa = records[0]
        serial = zone.serial_of(soa)
        if request.qtype == IXFR:
            known = request.authority
            if len(known) != 1 or known[0].rtype != SOA:
                # As CoreDNS: an IXFR names the version the client has in one SOA.
                return Reply(rcode=SERVFAIL, plugin=self.name, error="transfer: IXFR without SOA")
            if zone.serial_of(known[0]) == serial:
                log.info(
                    "plugin/transfer: %s is up to date at %s (serial %d)",
                    request.client,
                    request.name,
                    serial,
                )
                return Reply(NOERROR, (soa,), aa=True, plugin=self.name)
        log.info(
            "plugin/transfer: outgoing transfer of %d records of zone %s to %s (serial %d)",
            len(records),
            request.name,
            request.client,
            serial,
        )
        return Reply(NOERROR, tuple(records), aa=True, plugin=self.name)


def build(rules: tuple[Rule, ...], ctx: BuildContext) -> TransferPlugin:
    return TransferPlugin(rules, ctx)


SPEC = PluginSpec("transfer", parse, build, repeatable=True, merge=merge)

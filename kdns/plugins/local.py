"""`local`: answer for localhost names so they never leave the server (CoreDNS's local).

Zones `localhost.`, `0.in-addr.arpa.`, `127.in-addr.arpa.` and `255.in-addr.arpa.` are served
mostly empty: `localhost.` has A 127.0.0.1, AAAA ::1, SOA and NS; the reverse zones' apexes SOA
and NS; `1.0.0.127.in-addr.arpa.` PTR `localhost.`; other types NODATA, other names NXDOMAIN,
each with the zone's SOA. Any name whose first label is `localhost` (`localhost.example.org.`)
gets 127.0.0.1 / ::1 too, counted in `coredns_local_localhost_requests_total`. TTLs are a week.
"""

from __future__ import annotations

from kdns import metrics
from kdns.corefile import Directive
from kdns.dns import names, records
from kdns.dns.message import NOERROR, NXDOMAIN, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

TTL = 604800
ZONES = ("localhost.", "0.in-addr.arpa.", "127.in-addr.arpa.", "255.in-addr.arpa.")
_LOOPBACK_PTR = "1.0.0.127.in-addr.arpa."


def parse(d: Directive, block: BlockInfo) -> None:
    parsing.no_args(d)
    parsing.no_block(d)


def _soa(origin: str) -> records.RR:
    return records.soa(origin, TTL, "localhost.", "root.localhost.", 1, 0, 0, 0, TTL)


def _address(request: Request) -> tuple[records.RR, ...]:
    if request.qtype == records.A:
        return (records.a(request.qname, TTL, "127.0.0.1"),)
    if request.qtype == records.AAAA:
        return (records.aaaa(request.qname, TTL, "::1"),)
    return ()


class LocalPlugin:
    name = "local"

    def __init__(self, ctx: BuildContext) -> None:
        self._localhost = metrics.counter(
            ctx.registry,
            "coredns_local_localhost_requests_total",
            "Counter of localhost.<domain> requests.",
        )

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        name = request.name
        if name.startswith("localhost.") and len(name) > len("localhost."):
            self._localhost.inc()
            replay = memo.get()
            if replay is not None:
                replay.on_hit.append(self._localhost.inc)  # answers re-served still count
            found = _address(request)
            return self._reply(NOERROR, found, () if found else (_soa(request.qname),))
        zone = names.longest_zone(name, ZONES)
        if zone is None:
            return await call_next(request)
        qname = request.qname
        origin = qname[len(qname) - len(zone) :]  # the zone as the client spelled it
        answer: tuple[records.RR, ...] = ()
        authority: tuple[records.RR, ...] = ()
        if name in ZONES:
            qtype = request.qtype
            if name == "localhost." and qtype in (records.A, records.AAAA):
                answer = _address(request)
            elif qtype == records.SOA:
                answer = (_soa(qname),)
            elif qtype == records.NS:
                answer = (records.ns(qname, TTL, "localhost."),)
            else:
                authority = (_soa(qname),)
        elif name == _LOOPBACK_PTR:
            if request.qtype == records.PTR:
                answer = (records.ptr(qname, TTL, "localhost."),)
            else:
                authority = (_soa(origin),)
        else:
            return self._reply(NXDOMAIN, (), (_soa(origin),))
        return self._reply(NOERROR, answer, authority)

    def _reply(
        self, rcode: int, answer: tuple[records.RR, ...], authority: tuple[records.RR, ...]
    ) -> Reply:
        replay = memo.get()
        if replay is not None:
            replay.allow()
        return Reply(rcode, answer, authority, plugin=self.name)


def build(config: None, ctx: BuildContext) -> LocalPlugin:
    return LocalPlugin(ctx)


SPEC = PluginSpec("local", parse, build)

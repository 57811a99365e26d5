"""`k8s_external [ZONES...] { apex APEX; headless; ttl TTL; fallthrough [ZONES...] }`: serve the
external addresses of Services under another zone, as CoreDNS's k8s_external.

`<svc>.<ns>.<zone>` answers a Service's spec.externalIPs and load balancer ingress addresses (a
load balancer known only by hostname as a CNAME to it), `_<port>._<proto>.<svc>.<ns>.<zone>`
its SRV records, and with `headless` the endpoints of headless Services. The apex has SOA and NS
records; the name server is `ns1.<apex>.<zone>` (apex default `dns`). All answers use `ttl`
(default 5). An unknown name is NXDOMAIN with the SOA, or with `fallthrough` goes to the next
plugin. The data is the index of the block's `kubernetes` plugin (its snapshot or its live
watches, and its filters), which must be present, as CoreDNS requires. See docs/k8s_external.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdns.cluster import external
from kdns.corefile import CorefileError, Directive
from kdns.dns import names
from kdns.dns import records as rr
from kdns.dns.message import NXDOMAIN, Reply, Request
from kdns.dns.records import RR
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec
from kdns.plugins.kubernetes import KubernetesPlugin, chase, not_synced

PROPERTIES = ("apex", "headless", "ttl", "fallthrough")


@dataclass(frozen=True, slots=True)
class ExternalConfig:
    options: external.ExternalOptions
    fallthrough: tuple[str, ...] | None = None  # None: off; (): every zone
    file: str = ""
    line: int = 0


def parse(d: Directive, block: BlockInfo) -> ExternalConfig:
    zones = parsing.zones(d.args, block.zones)
    apex, ttl, headless = "dns", 5, False
    fallthrough: tuple[str, ...] | None = None
    for sub in d.block or ():
        if sub.name == "apex":
            parsing.arg_count(sub, 1, 1, "apex APEX")
            apex = sub.args[0].text.lower().strip(".")
            if not apex or ".." in apex or any(len(x) > 63 for x in apex.split(".")):
                raise sub.args[0].error(f"invalid apex {sub.args[0].text!r}: expected a DNS label")
        elif sub.name == "ttl":
            parsing.arg_count(sub, 1, 1, "ttl TTL")
            ttl = parsing.integer(sub.args[0], 0, 3600, "ttl")
        elif sub.name == "headless":
            parsing.no_args(sub)
            headless = True
        elif sub.name == "fallthrough":
            fallthrough = parsing.zones(sub.args, ())
        else:
            raise parsing.unknown_property("k8s_external", sub, PROPERTIES)
        parsing.no_block(sub)
    opts = external.ExternalOptions(zones, apex, ttl, headless)
    return ExternalConfig(opts, fallthrough, d.file, d.line)


class ExternalPlugin:
    name = "k8s_external"

    def __init__(self, config: ExternalConfig, ctx: BuildContext) -> None:
        k8s = ctx.built.get("kubernetes")
        if not isinstance(k8s, KubernetesPlugin):
            # CoreDNS fails at startup the same way ("kubernetes plugin not loaded").
            raise CorefileError(
                config.file,
                config.line,
                "k8s_external needs a kubernetes directive in the same server block",
            )
        self.config = config
        self.options = config.options
        self.kubernetes = k8s
        self._lookup = ctx.lookup

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        zone = names.longest_zone(request.name, self.options.zones)
        if zone is None or request.qclass != rr.CLASS_IN:
            return await call_next(request)
        k8s = self.kubernetes
        index = k8s.index  # one consistent snapshot for this lookup
        result = external.answer(index, k8s.options, self.options, request.qname, request.qtype)
        reply = result.reply
        if reply.rcode == NXDOMAIN:
            if parsing.falls_through(self.config.fallthrough, request.name):
                return await call_next(request)
            if not index.synced:
                return not_synced(reply, self.name)
        if result.chase is not None:
            memo.deny()  # the answer now holds upstream data with its own lifetime
            return await chase(self._lookup, request, reply, result.chase)
        note = memo.get()
        if note is not None:
            note.allow(k8s.still_valid(index, result.deps))
        return reply

    def transfer(self, zone: str) -> tuple[RR, ...] | None:
        """Every record of `zone` for a zone transfer (transfer.Transferer): SOA first and
        last; None when `zone` is not one of this plugin's zones.

        Read from one index snapshot, so the records are consistent with each other: the
        Services' external addresses and SRV records, with `headless` the headless Services'
        endpoints, the apex NS and its addresses, and in a reverse zone the PTR records.
        """
        k8s = self.kubernetes
        records = external.zone_records(k8s.index, k8s.options, self.options, zone)
        if not records:
            return None
        return (*records, records[0])


def build(config: ExternalConfig, ctx: BuildContext) -> ExternalPlugin:
    return ExternalPlugin(config, ctx)


SPEC = PluginSpec("k8s_external", parse, build)

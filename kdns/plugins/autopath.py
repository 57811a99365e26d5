"""`autopath [ZONES...] @kubernetes|RESOLV-CONF`: walk the search path server-side.

A pod with `ndots:5` asks `x.<ns>.svc.cluster.local`, then `x.svc.cluster.local`, ... until a
name exists. When a query is the first search expansion of a known client, autopath tries the
remaining expansions itself (down the chain: kubernetes, forward) and answers with a CNAME from
the asked name to the first one that exists, saving the client the round trips. If every
expansion is NXDOMAIN the first reply is returned and the client searches on as usual.
With `@kubernetes` the search list comes from the client pod's namespace (`pods verified`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from kdns import metrics
from kdns.corefile import CorefileError, Directive
from kdns.dns import names
from kdns.dns import records as rr
from kdns.dns.message import FORMERR, NOTIMP, NXDOMAIN, REFUSED, SERVFAIL, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec
from kdns.plugins.kubernetes import KubernetesPlugin, resolv_search

# Rcodes CoreDNS's plugins return without writing a reply: try the next expansion.
_NOT_WRITTEN = frozenset({SERVFAIL, REFUSED, FORMERR, NOTIMP})


@dataclass(frozen=True, slots=True)
class AutopathConfig:
    zones: tuple[str, ...]
    plugin: str | None  # "kubernetes" for @kubernetes
    search: tuple[str, ...]  # from a resolv.conf file, when not @plugin
    file: str
    line: int


def parse(d: Directive, block: BlockInfo) -> AutopathConfig:
    parsing.no_block(d)
    if not d.args:
        raise d.error(
            "wrong number of arguments for autopath: usage: autopath [ZONE...] RESOLV-CONF"
        )
    *zone_toks, source = d.args
    zones = parsing.zones(zone_toks, block.zones)
    if source.text.startswith("@"):
        name = source.text[1:]
        if name != "kubernetes":
            raise source.error(f"autopath: @{name} is not supported (use @kubernetes)")
        return AutopathConfig(zones, name, (), d.file, d.line)
    path = Path(d.file).parent / source.text
    if not path.is_file():
        raise source.error(f"autopath: {source.text} is not a resolv.conf file or @kubernetes")
    search = resolv_search(path)
    if not search:
        raise source.error(f"autopath: {source.text} has no search domains")
    return AutopathConfig(zones, None, (*search, ""), d.file, d.line)


class AutopathPlugin:
    name = "autopath"

    def __init__(self, config: AutopathConfig, ctx: BuildContext) -> None:
        self.config = config
        self.kubernetes: KubernetesPlugin | None = None
        if config.plugin == "kubernetes":
            k8s = ctx.built.get("kubernetes")
            if not isinstance(k8s, KubernetesPlugin):
                raise CorefileError(
                    config.file, config.line, "autopath @kubernetes needs a kubernetes directive"
                )
            if not k8s.config.needs_pods:
                raise CorefileError(
                    config.file,
                    config.line,
                    "autopath @kubernetes requires kubernetes pods verified",
                )
            self.kubernetes = k8s
        self._success = metrics.counter(
            ctx.registry,
            "coredns_autopath_success_total",
            "Counter of requests that did autopath.",
            ("server",),
        ).labels(ctx.server)

    def _search(self, request: Request) -> tuple[str, ...]:
        if self.kubernetes is not None:
            return self.kubernetes.search_path(request)
        return self.config.search

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        if names.longest_zone(request.name, self.config.zones) is None:
            return await call_next(request)
        search = self._search(request)
        if (
            not search
            or request.name == search[0]
            or not names.is_subdomain(request.name, search[0])
        ):
            reply = await call_next(request)
            if reply.rcode == NXDOMAIN or reply.rcode in _NOT_WRITTEN:
                # A pod asking these same bytes would get a search-path answer instead.
                memo.deny()
            return reply
        cut = len(search[0]) + (0 if search[0] == "." else 1)
        base = request.qname[: len(request.qname) - cut]
        first: Reply | None = None
        for i, domain in enumerate(search):
            qname = base + "." if domain in ("", ".") else f"{base}.{domain}"
            try:
                sub = request.with_question(qname)
            except ValueError:
                continue  # too long with this suffix
            reply = await call_next(sub)
            if i == 0:
                first = reply
            if reply.rcode in _NOT_WRITTEN or reply.rcode == NXDOMAIN:
                continue
            if i > 0:
                memo.deny()  # the answer depends on who asked
            self._success.inc()
            return _cnamer(reply, request.qname)
        memo.deny()
        assert first is not None
        return first


def _cnamer(reply: Reply, original: str) -> Reply:
    """Prepend `original CNAME <owner of the first answer>`, as CoreDNS's autopath does."""
    low = original.lower()
    for record in reply.answer:
        if record.name.lower() == low:
            continue
        link = rr.cname(original, record.ttl, record.name)
        return replace(reply, answer=(link, *reply.answer))
    return reply


def build(config: AutopathConfig, ctx: BuildContext) -> AutopathPlugin:
    return AutopathPlugin(config, ctx)


SPEC = PluginSpec("autopath", parse, build)

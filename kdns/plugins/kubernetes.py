"""`kubernetes [ZONES...] { ... }`: answer cluster names from the index, as CoreDNS's plugin.

Options follow CoreDNS's README: endpoint, kubeconfig, tls, namespaces, namespace_labels, labels,
pods, endpoint_pod_names, ttl, noendpoints, fallthrough, ignore empty_service, startup_timeout,
multicluster (names of those zones come from ServiceImports: kdns.cluster.multicluster),
zonal (zone-scoped names of headless services: kdns.cluster.zonal).
`snapshot FILE` is kdns's own: serve a file of Kubernetes objects instead of an API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from kdns import metrics
from kdns.cluster import answer, clustername, multicluster, search, transfer, zonal
from kdns.cluster import selector as selectors
from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.objects import Key
from kdns.cluster.options import Options, PodsMode
from kdns.corefile import Directive
from kdns.dns import names
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN, SERVFAIL, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import (
    BlockInfo,
    BuildContext,
    Handler,
    PluginSpec,
    Readiness,
    Service,
    background,
)
from kdns.plugins.validity import Checks, StillValid

log = logging.getLogger("kdns.kubernetes")

PROPERTIES = (
    "endpoint",
    "tls",
    "kubeconfig",
    "namespaces",
    "namespace_labels",
    "labels",
    "pods",
    "endpoint_pod_names",
    "ttl",
    "noendpoints",
    "fallthrough",
    "ignore",
    "startup_timeout",
    "snapshot",
    "apiserver_qps",
    "apiserver_burst",
    "apiserver_max_inflight",
    "multicluster",
    "zonal",
)
NOT_YET = (
    "transfer",
    "resyncperiod",
)


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    options: Options
    fallthrough: tuple[str, ...] | None = None  # None: off; (): every zone
    snapshot: str | None = None
    endpoints: tuple[str, ...] = ()  # `endpoint URL...`: the API server, then its fail-overs
    kubeconfig: str | None = None
    context: str | None = None
    tls: tuple[str, str, str] | None = None
    startup_timeout: float = 5.0

    @property
    def needs_pods(self) -> bool:
        return self.options.pods == PodsMode.VERIFIED

    @property
    def endpoint(self) -> str | None:
        return self.endpoints[0] if self.endpoints else None


def parse(d: Directive, block: BlockInfo) -> KubernetesConfig:
    zones = parsing.zones(d.args, block.zones)
    opts: dict[str, Any] = {"zones": zones}
    cfg: dict[str, Any] = {}
    base_dir = Path(d.file).parent
    for sub in d.block or ():
        name, args = sub.name, sub.args
        if name == "ttl":
            parsing.arg_count(sub, 1, 1, "ttl SECONDS")
            opts["ttl"] = parsing.integer(args[0], 0, 3600, "ttl")
        elif name == "pods":
            parsing.arg_count(sub, 1, 1, "pods disabled|insecure|verified")
            try:
                opts["pods"] = PodsMode(args[0].text)
            except ValueError:
                raise args[0].error(
                    f"pods must be disabled, insecure or verified, got {args[0].text!r}"
                ) from None
        elif name == "namespaces":
            if not args:
                raise sub.error("namespaces needs at least one namespace")
            opts["namespaces"] = frozenset(t.text.lower() for t in args)  # names compare lower-case
        elif name in ("namespace_labels", "labels"):
            if not args:
                raise sub.error(f"{name} needs a label selector, e.g. {name} app=dns")
            try:
                opts[name] = selectors.parse(" ".join(t.text for t in args))
            except ValueError as exc:
                raise args[0].error(f"invalid {name}: {exc}") from None
        elif name == "endpoint_pod_names":
            parsing.no_args(sub)
            opts["endpoint_pod_names"] = True
        elif name == "noendpoints":
            parsing.no_args(sub)
            opts["noendpoints"] = True
        elif name == "zonal":
            parsing.no_args(sub)
            opts["zonal"] = True
        elif name == "ignore":
            # CoreDNS reads only the first word and tolerates any that follow it.
            if not args or args[0].text != "empty_service":
                raise sub.error("usage: ignore empty_service")
            opts["ignore_empty_service"] = True
        elif name == "fallthrough":
            cfg["fallthrough"] = parsing.zones(args, ())
        elif name == "endpoint":
            if not args:
                raise sub.error("wrong number of arguments for endpoint: usage: endpoint URL...")
            for tok in args:
                if not tok.text.startswith(("http://", "https://")):
                    raise tok.error(
                        f"endpoint must be an http:// or https:// URL, got {tok.text!r}"
                    )
            # Several URLs: the API servers of one cluster, used in turn when one is unreachable.
            cfg["endpoints"] = tuple(t.text for t in args)
        elif name == "kubeconfig":
            parsing.arg_count(sub, 1, 2, "kubeconfig KUBECONFIG [CONTEXT]")
            cfg["kubeconfig"] = str(base_dir / args[0].text)
            cfg["context"] = args[1].text if len(args) > 1 else None
        elif name == "tls":
            parsing.arg_count(sub, 3, 3, "tls CERT KEY CACERT")
            cfg["tls"] = tuple(str(base_dir / t.text) for t in args)
        elif name == "startup_timeout":
            parsing.arg_count(sub, 1, 1, "startup_timeout DURATION")
            cfg["startup_timeout"] = parsing.duration(args[0])
        elif name == "snapshot":
            parsing.arg_count(sub, 1, 1, "snapshot FILE")
            cfg["snapshot"] = str(base_dir / args[0].text)
        elif name == "multicluster":
            # Without zones it is accepted and does nothing, as in CoreDNS.
            for tok in args:
                for zone in parsing.zone(tok):
                    if zone not in zones:
                        raise tok.error(
                            f"kubernetes: is not authoritative for the multicluster zone {zone}"
                        )
            opts["multicluster"] = parsing.zones(args, ())
        elif name.startswith("apiserver_"):
            # client-go's request throttles: kdns makes one list and one watch per resource
            # kind, so there is nothing for them to limit.
            parsing.arg_count(sub, 1, 1, f"{name} NUMBER")
            try:
                value = float(args[0].text)
            except ValueError:
                raise args[0].error(f"{name} must be a number, got {args[0].text!r}") from None
            if value < 0 or (name != "apiserver_qps" and not value.is_integer()):
                raise args[0].error(f"{name} must be >= 0 (a whole number except for qps)")
            parsing.no_effect(log, f"kubernetes {name}", "a client-go throttle of CoreDNS")
        elif name in NOT_YET:
            raise sub.error(f'kubernetes option "{name}" is not supported yet')
        elif name == "upstream":
            # Removed in CoreDNS 1.7: ExternalName targets are looked up through the server.
            raise sub.error(
                "unknown property 'upstream' for kubernetes: it was removed in CoreDNS 1.7 and "
                "is no longer needed (ExternalName targets are resolved through this server's "
                "own plugins, normally forward); delete the line"
            )
        else:
            raise parsing.unknown_property("kubernetes", sub, PROPERTIES)
        parsing.no_block(sub)
    if opts.get("namespaces") and opts.get("namespace_labels") is not None:
        # CoreDNS setup.go refuses the pair: one filter says which namespaces exist.
        raise d.error("kubernetes: namespaces and namespace_labels cannot both be set")
    if opts.get("zonal") and opts.get("noendpoints"):
        # As CoreDNS (its setup tests): zonal names are made of endpoints, which noendpoints
        # does not read.
        raise d.error("kubernetes: zonal cannot be used with noendpoints")
    if opts.get("pods") is None:
        opts["pods"] = PodsMode.DISABLED
    if cfg.get("snapshot") and (cfg.get("endpoints") or cfg.get("kubeconfig")):
        raise d.error("kubernetes: snapshot cannot be combined with endpoint or kubeconfig")
    return KubernetesConfig(options=Options(**opts), **cfg)


RESOLV_CONF = "/etc/resolv.conf"


def resolv_search(path: Path) -> tuple[str, ...]:
    """The `search` (or `domain`) domains of a resolv.conf, normalized; () if unreadable."""
    try:
        text = path.read_text()
    except OSError:
        return ()
    found: tuple[str, ...] = ()
    for _, key, args in search.resolv_lines(text):
        if key in ("search", "domain") and args:
            found = tuple(names.normalize(d) for d in args)  # the last line wins
    return found


class Source(Protocol):
    async def run(self) -> None:
        """Keep the index in step with the source until cancelled."""

    async def close(self) -> None:
        """Release what `run` held (the API client's connections)."""


def _server_ips(bind: tuple[str, ...]) -> tuple[str, ...]:
    concrete = tuple(ip for ip in bind if ip not in ("0.0.0.0", "::", ""))
    if concrete:
        return concrete
    pod_ip = os.environ.get("POD_IP", "")  # set from the downward API in deploy/
    return tuple(ip for ip in pod_ip.replace(",", " ").split() if ip)


class KubernetesPlugin(Service, Readiness):
    name = "kubernetes"

    def __init__(self, config: KubernetesConfig, ctx: BuildContext) -> None:
        server_ips = _server_ips(ctx.bind)
        self.config = replace(config, options=replace(config.options, server_ips=server_ips))
        self.options = self.config.options
        self._zones = names.Zones(self.options.zones)
        self.builder = IndexBuilder()
        kinds = {"Namespace", "Service", "EndpointSlice"}
        if self.config.needs_pods:
            kinds.add("Pod")
        if self.options.multicluster:
            kinds.add("ServiceImport")
        self.builder.require(kinds)
        self.index: ClusterIndex = self.builder.current
        self._lookup = ctx.lookup
        # Search domains of the server's own resolv.conf, tried after the cluster ones (autopath).
        self.autopath_search = resolv_search(Path(RESOLV_CONF))
        self._synced = asyncio.Event()
        self.source = self._make_source(ctx)
        self._nxdomain = metrics.counter(
            ctx.registry, "kdns_kubernetes_nxdomain_total", "NXDOMAIN answers for cluster names"
        )
        self._expansions = metrics.counter(
            ctx.registry,
            "kdns_search_path_queries_total",
            "NXDOMAIN answers for search-list expansions such as "
            "www.example.com.<ns>.svc.<zone>, by the namespace the name shows ('' if none)",
            ["namespace"],
        )
        self._expansion_children: dict[str, Any] = {}
        self.checks = Checks(self)

    def _make_source(self, ctx: BuildContext) -> Source:
        if self.config.snapshot:
            from kdns.sources.static import StaticSource

            return StaticSource(self.config.snapshot, self.builder, self.publish)
        from kdns.sources.kubernetes import KubernetesSource  # imported only when used (~1 s)

        return KubernetesSource(self.config, self.builder, self.publish, ctx.registry)

    def publish(self) -> None:
        """Swap in a new snapshot; lookups already running keep the one they read."""
        self.index = self.builder.publish()
        if self.index.synced:
            self._synced.set()

    def ready(self) -> bool:
        return self.index.synced

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The source runs while the context is open."""
        try:
            async with background(self.source.run, "kubernetes-source"):
                # Like CoreDNS: hold back serving for up to startup_timeout while the first
                # sync runs.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.startup_timeout):
                        await self._synced.wait()
                if not self.index.synced:
                    log.warning(
                        "kubernetes: not synced after %.1fs; answering SERVFAIL for cluster "
                        "names until the first sync",
                        self.config.startup_timeout,
                    )
                yield
        finally:
            await self.source.close()

    def search_path(self, request: Request) -> tuple[str, ...]:
        """The client pod's search list for autopath, or () when it is not known.

        Like CoreDNS's kubernetes AutoPath: needs `pods verified`; the namespace is that of the
        first running pod with the client's IP; the list ends with "" (the bare name).
        """
        if not self.config.needs_pods:
            return ()
        zone = names.longest_zone(request.name, self.options.zones)
        if zone is None:
            return ()
        pod = next(
            (p for p in self.index.pods_by_ip.get(request.client, ()) if not p.terminating), None
        )
        if pod is None:
            return ()
        ns = pod.namespace.lower()
        if zone == ".":
            cluster: tuple[str, ...] = (f"{ns}.svc.", "svc.", ".")
        else:
            cluster = (f"{ns}.svc.{zone}", f"svc.{zone}", zone)
        return (*cluster, *self.autopath_search, "")

    def transfer(self, zone: str) -> Sequence[rr.RR] | None:
        """Transferer: the records of one of the plugin's zones, from the current snapshot."""
        return transfer.records(self.index, self.options, zone)

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        zone = self._zones.match(request.name)
        if zone is None or request.qclass != rr.CLASS_IN:
            return await call_next(request)
        index = self.index  # one consistent snapshot for this lookup
        cn = clustername.parse(request.qname, request.name, zone)
        if zone in self.options.multicluster:
            result = multicluster.lookup(index, self.options, request.qname, request.qtype, cn)
        else:
            result = zonal.lookup(index, self.options, request.qname, request.qtype, cn) or (
                answer.lookup(index, self.options, request.qname, request.qtype, cn)
            )
        reply = result.reply
        if reply.rcode == NXDOMAIN:
            ft = self.config.fallthrough
            if ft is not None and parsing.falls_through(ft, request.name):
                return await call_next(request)
            if not index.synced:
                return not_synced(reply, self.name)
            self._count_nxdomain(cn, index)
        if result.chase is not None and request.qtype in (rr.A, rr.AAAA):
            memo.deny()  # the answer now holds upstream data with its own lifetime
            reply = await chase(self._lookup, request, reply, result.chase)
        else:
            replay = memo.get()
            if replay is not None:
                replay.allow(self.still_valid(index, result.deps))
        return reply

    def still_valid(self, index: ClusterIndex, deps: tuple[Key, ...] | None) -> StillValid:
        """When bytes of this answer may be served again (see kdns.plugins.validity)."""
        return self.checks.check(index, deps)

    def _count_nxdomain(self, cn: clustername.ClusterName, index: ClusterIndex) -> None:
        """Count NXDOMAINs, and those that are a pod's search list burning queries."""
        self._nxdomain.inc()
        replay = memo.get()
        if replay is not None:
            replay.on_hit.append(self._nxdomain.inc)
        if cn.zone == "." or cn.reverse:
            return
        found = search.expansion(
            cn.labels, index.namespace_exists, lambda ns, svc: (ns, svc) in index.services
        )
        if found is None:
            return
        # Only `<name>.<ns>.svc.<zone>` names the namespace; the label never depends on the
        # client, so a reply re-served from bytes counts the same.
        child = self._expansion_children.get(found[1])
        if child is None:
            child = self._expansions.labels(found[1])
            self._expansion_children[found[1]] = child
        child.inc()
        if replay is not None:
            replay.on_hit.append(child.inc)


def not_synced(reply: Reply, plugin: str) -> Reply:
    """An NXDOMAIN found before the index first synced with the API: SERVFAIL, since the name
    may well exist (a client retries; a cached NXDOMAIN would hide it)."""
    return replace(
        reply, rcode=SERVFAIL, plugin=plugin, error=f"{plugin}: not yet synced with the API"
    )


# How many CNAME lookups through the server the current query is inside: an ExternalName
# Service and a load balancer hostname may point at each other's names (a loop across plugins).
_chase_depth: contextvars.ContextVar[int] = contextvars.ContextVar("kdns_chase_depth", default=0)


async def chase(lookup: Handler, request: Request, reply: Reply, target: str) -> Reply:
    """Resolve an out-of-zone CNAME target through the server (normally `forward`) and append
    its records to `reply`; on failure, or past MAX_CHAIN nested lookups, the CNAME alone is
    still a correct answer (the client follows it)."""
    depth = _chase_depth.get()
    if depth >= answer.MAX_CHAIN:
        return reply
    try:
        sub = request.with_question(target)
    except ValueError:
        return reply
    token = _chase_depth.set(depth + 1)
    try:
        upstream = await lookup(sub)
    except Exception as exc:
        log.debug("looking up CNAME target %s failed: %s", target, exc)
        return reply
    finally:
        _chase_depth.reset(token)
    if upstream.rcode not in (NOERROR, NXDOMAIN):
        return reply
    extra = tuple(r for r in upstream.answer if r not in reply.answer)
    return replace(reply, answer=reply.answer + extra, tc=reply.tc or upstream.tc)


def build(config: KubernetesConfig, ctx: BuildContext) -> KubernetesPlugin:
    return KubernetesPlugin(config, ctx)


SPEC = PluginSpec("kubernetes", parse, build)

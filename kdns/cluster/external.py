"""Answer a question about a `k8s_external` zone from one ClusterIndex snapshot.

CoreDNS's k8s_external serves the addresses a Service has outside the cluster under another
zone: `<svc>.<ns>.<zone>` for spec.externalIPs and status.loadBalancer.ingress, SRV records
`_<port>._<proto>.<svc>.<ns>.<zone>` for its ports, and with `headless` the endpoints of headless
Services as the kubernetes plugin names them. The zone has an apex (SOA, NS) whose name server
lives under the `apex` label: `ns1.<apex>.<zone>`. Names are read with the kubernetes plugin's
filters (namespaces, labels), so the external zone never shows what the cluster zone hides.
"""

from __future__ import annotations

import functools
import ipaddress
import sys
from dataclasses import dataclass

from kdns.cluster.answer import REVERSE_ZONES, Answer, Item, endpoint_label
from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Key, Service
from kdns.cluster.options import (
    Options,
    front_services,
    match_port,
    namespace_exposed,
    service_visible,
)
from kdns.dns import names
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN, Reply
from kdns.dns.records import RR

PLUGIN = "k8s_external"  # the metrics label of the replies written here
NS_LABEL = "ns1"


@dataclass(frozen=True, slots=True)
class ExternalOptions:
    """What the `k8s_external` directive configures, in the form lookups need."""

    zones: tuple[str, ...]
    apex: str = "dns"
    ttl: int = 5
    headless: bool = False

    @property
    def primary_zone(self) -> str:
        """The zone PTR targets are named in: the first forward zone."""
        return next((z for z in self.zones if not z.endswith(REVERSE_ZONES)), self.zones[0])


def _under(label: str, zone: str) -> str:
    return f"{label}." if zone == "." else f"{label}.{zone}"


def ns_name(opts: ExternalOptions, zone: str) -> str:
    return _under(f"{NS_LABEL}.{opts.apex}", zone)


def soa_record(opts: ExternalOptions, index: ClusterIndex, zone: str) -> RR:
    return _soa(zone, opts.apex, opts.ttl, index.serial)


@functools.lru_cache(maxsize=256)
def _soa(zone: str, apex: str, ttl: int, serial: int) -> RR:
    # CoreDNS apex.go: mname ns1.<apex>.<zone>, rname hostmaster.<apex>.<zone>, the cluster's
    # serial, fixed timers and the plugin's TTL as TTL and minimum. Built once per serial.
    mname = _under(f"{NS_LABEL}.{apex}", zone)
    rname = _under(f"hostmaster.{apex}", zone)
    return rr.soa(zone, ttl, mname, rname, serial, 7200, 1800, 86400, ttl)


@dataclass(frozen=True, slots=True)
class _Ctx:
    index: ClusterIndex
    kopts: Options
    opts: ExternalOptions
    zone: str


class _NoName(Exception):
    """The name does not exist (NXDOMAIN)."""


def _negative(ctx: _Ctx, rcode: int, deps: tuple[Key, ...] | None = None) -> Answer:
    soa = soa_record(ctx.opts, ctx.index, ctx.zone)
    return Answer(
        Reply(rcode=rcode, authority=(soa,), aa=True, plugin=PLUGIN),
        exists=rcode != NXDOMAIN,
        deps=deps,
    )


def _positive(
    records: list[RR],
    extra: list[RR] | tuple[RR, ...] = (),
    chase: str | None = None,
    deps: tuple[Key, ...] | None = None,
) -> Answer:
    reply = Reply(NOERROR, tuple(records), (), tuple(extra), aa=True, plugin=PLUGIN)
    return Answer(reply, chase, deps=deps)


def answer(
    index: ClusterIndex, kopts: Options, opts: ExternalOptions, qname: str, qtype: int
) -> Answer:
    """Answer `qname`/`qtype` for a name inside one of `opts.zones` (the caller checked).

    `kopts` are the kubernetes plugin's options: its namespace and label filters, endpoint
    naming and the server's own addresses (for the apex NS records) apply here too.
    """
    name = names.normalize(qname)
    zone = names.longest_zone(name, opts.zones)
    if zone is None:
        raise ValueError(f"{qname} is not in {opts.zones}")
    ctx = _Ctx(index, kopts, opts, zone)
    if name == zone:
        return _apex(ctx, qname, qtype)
    apex_zone = _under(opts.apex, zone)
    if names.is_subdomain(name, apex_zone):
        return _sub_apex(ctx, qname, name[: len(name) - len(apex_zone)].rstrip("."), qtype)
    if qtype == rr.PTR and zone.endswith(REVERSE_ZONES):
        ip = names.ptr_to_ip(name)
        if ip is not None:
            return _ptr(ctx, qname, ip)
    rel = name[: len(name) - len(zone)].rstrip(".") if zone != "." else name.rstrip(".")
    segs = names.split(rel)
    deps = _dependencies(segs)
    try:
        items = _items(ctx, segs)
    except _NoName:
        return _negative(ctx, NXDOMAIN, deps)
    return _shape(ctx, qname, qtype, items, deps)


def _dependencies(segs: list[str]) -> tuple[Key, ...]:
    """The index keys a `[...].<svc>.<ns>.<zone>` answer reads: its namespace and service (the
    index versions both, so an answer kept as bytes lives while other objects change)."""
    namespace = sys.intern(segs[-1])  # kept with stored replies (as clustername.dependencies)
    if len(segs) == 1:
        return (("", namespace),)
    return ((namespace, segs[-2]), ("", namespace))


def _items(ctx: _Ctx, segs: list[str]) -> list[Item]:
    """What `<endpoint>.<svc>.<ns>` or `_<port>._<proto>.<svc>.<ns>` stands for (CoreDNS
    kubernetes/external.go); [] for a name that exists without records (`<ns>.<zone>`)."""
    index, kopts = ctx.index, ctx.kopts
    namespace = segs[-1]
    if not namespace_exposed(index, kopts, namespace):
        raise _NoName
    if len(segs) == 1:
        return []
    service, rest = segs[-2], segs[:-2]
    endpoint = port = proto = ""
    if len(rest) == 1:
        endpoint = rest[0].removeprefix("_")
    elif len(rest) == 2:
        port, proto = rest[0].removeprefix("_"), rest[1].removeprefix("_")
    elif len(rest) > 2:
        raise _NoName
    svc = index.services.get((namespace, service))
    if svc is None or not service_visible(kopts, svc):
        raise _NoName
    has_external = bool(svc.external_ips or svc.external_hosts)
    if ctx.opts.headless and not has_external and (svc.headless or endpoint):
        items = _endpoint_items(ctx, svc, endpoint, port, proto)
    elif endpoint:
        items = []  # only endpoints of (headless) Services have names below the Service
    else:
        items = _external_items(svc, port, proto)
    if not items:
        raise _NoName
    return items


def _endpoint_items(ctx: _Ctx, svc: Service, endpoint: str, port: str, proto: str) -> list[Item]:
    kopts = ctx.kopts
    addrs = () if kopts.noendpoints else ctx.index.addresses.get(svc.key, ())
    base = f"{svc.name}.{svc.namespace}."
    out: list[Item] = []
    for addr in addrs:
        label = endpoint_label(addr, kopts.endpoint_pod_names)
        if endpoint and endpoint != label:
            continue
        if not addr.ports:
            if not (port or proto):
                out.append(Item(addr.ip, -1, f"{label}.{base}"))
            continue
        out.extend(
            Item(addr.ip, p.port, f"{label}.{base}")
            for p in addr.ports
            if match_port(port, proto, p)
        )
    return out


def _external_items(svc: Service, port: str, proto: str) -> list[Item]:
    base = f"{svc.name}.{svc.namespace}."
    hosts = [(ip, False) for ip in svc.external_ips] + [(h, True) for h in svc.external_hosts]
    out: list[Item] = []
    for host, is_name in hosts:
        if not svc.ports:
            if not (port or proto):
                out.append(Item(host, -1, base, external=is_name))
            continue
        out.extend(
            Item(host, p.port, base, external=is_name)
            for p in svc.ports
            if match_port(port, proto, p)
        )
    return out


def _shape(ctx: _Ctx, qname: str, qtype: int, items: list[Item], deps: tuple[Key, ...]) -> Answer:
    ttl = ctx.opts.ttl
    addresses = [i for i in items if not i.external]
    hostname = next((i.host for i in items if i.external), None)
    if hostname is not None and not addresses and qtype in (rr.A, rr.AAAA, rr.CNAME):
        # A load balancer known by name only: the name is an alias of it (CoreDNS answers the
        # CNAME and looks the target up; `chase` asks the caller to do that for A/AAAA).
        cname = [rr.cname(qname, ttl, hostname)]
        return _positive(cname, chase=None if qtype == rr.CNAME else hostname, deps=deps)
    if qtype in (rr.A, rr.AAAA):
        seen: set[str] = set()
        out = []
        for item in addresses:
            if item.host not in seen:
                seen.add(item.host)
                rec = rr.address(qname, ttl, item.host)
                if rec.rtype == qtype:
                    out.append(rec)
        return _positive(out, deps=deps) if out else _negative(ctx, NOERROR, deps)
    if qtype == rr.SRV:
        return _srv(ctx, qname, items, deps)
    return _negative(ctx, NOERROR, deps)


def _srv(ctx: _Ctx, qname: str, items: list[Item], deps: tuple[Key, ...]) -> Answer:
    ttl = ctx.opts.ttl
    # As the kubernetes plugin: priority 0, weight floor(100 / N) over every item, at least 1.
    weight = max(1, 100 // len(items))
    answers: list[RR] = []
    extra: list[RR] = []
    seen_srv: set[tuple[str, int]] = set()
    seen_glue: set[tuple[str, str]] = set()
    for item in items:
        if item.port < 0:
            continue  # a port-less Service has addresses but no SRV
        target = _under(item.target.rstrip("."), ctx.zone)
        if (target, item.port) not in seen_srv:
            seen_srv.add((target, item.port))
            answers.append(rr.srv(qname, ttl, 0, weight, item.port, target))
        if not item.external and (target, item.host) not in seen_glue:
            seen_glue.add((target, item.host))
            extra.append(rr.address(target, ttl, item.host))
    return _positive(answers, extra, deps=deps) if answers else _negative(ctx, NOERROR, deps)


def ns_addresses(index: ClusterIndex, kopts: Options, opts: ExternalOptions) -> list[str]:
    """The addresses of the zone's name server, as CoreDNS's nsAddrs(external=true).

    The Services that have one of this server's own IPs among their endpoints are its front: their
    external addresses (the endpoints of a headless one, with `headless`). When no Service has
    them, the server's own IPs.
    """
    out: list[str] = []
    fronts = front_services(index, kopts)
    for svc in fronts:
        if opts.headless and svc.headless:
            out.extend(a.ip for a in index.addresses.get(svc.key, ()))
        else:
            out.extend(svc.external_ips)
    if not fronts:
        out = [ip for ip in kopts.server_ips if ip]
    return list(dict.fromkeys(out))


def _apex(ctx: _Ctx, qname: str, qtype: int) -> Answer:
    if qtype == rr.SOA:
        return _positive([soa_record(ctx.opts, ctx.index, ctx.zone)])
    if qtype == rr.NS:
        ttl, target = ctx.opts.ttl, ns_name(ctx.opts, ctx.zone)
        glue = [rr.address(target, ttl, ip) for ip in ns_addresses(ctx.index, ctx.kopts, ctx.opts)]
        return _positive([rr.ns(qname, ttl, target)], glue)
    return _negative(ctx, NOERROR)


def _sub_apex(ctx: _Ctx, qname: str, rel: str, qtype: int) -> Answer:
    """`<apex>.<zone>` (an empty non-terminal) and `ns1.<apex>.<zone>` (the name server)."""
    if not rel:
        return _negative(ctx, NOERROR)
    if rel != NS_LABEL:
        return _negative(ctx, NXDOMAIN)
    recs = [
        rr.address(qname, ctx.opts.ttl, ip) for ip in ns_addresses(ctx.index, ctx.kopts, ctx.opts)
    ]
    found = [r for r in recs if r.rtype == qtype]
    return _positive(found) if found else _negative(ctx, NOERROR)


def _ptr(ctx: _Ctx, qname: str, ip: str) -> Answer:
    """The Services with `ip` as an external address, named in the first forward zone."""
    index, kopts = ctx.index, ctx.kopts
    zone = ctx.opts.primary_zone
    targets: list[str] = []
    for key in index.external_ip_owners.get(ip, ()):
        svc = index.services.get(key)
        if svc is None or not service_visible(kopts, svc):
            continue
        if not namespace_exposed(index, kopts, key[0]):
            continue
        target = _under(f"{key[1]}.{key[0]}", zone)
        if target not in targets:
            targets.append(target)
    if not targets:
        return _negative(ctx, NXDOMAIN)
    return _positive([rr.ptr(qname, ctx.opts.ttl, t) for t in targets])


def zone_records(
    index: ClusterIndex, kopts: Options, opts: ExternalOptions, zone: str
) -> list[RR] | None:
    """Every record of `zone` (one of `opts.zones`), SOA first: what a zone transfer sends
    between its two SOAs. None when `zone` is not one of this plugin's zones."""
    zone = names.normalize(zone)
    if zone not in opts.zones:
        return None
    ttl = opts.ttl
    target = ns_name(opts, zone)
    out: list[RR] = [soa_record(opts, index, zone), rr.ns(zone, ttl, target)]
    out.extend(rr.address(target, ttl, ip) for ip in ns_addresses(index, kopts, opts))
    if zone.endswith(REVERSE_ZONES):
        for ip, _owners in sorted(index.external_ip_owners.items()):
            name = _reverse_name(ip)
            if names.is_subdomain(name, zone):
                ctx = _Ctx(index, kopts, opts, zone)
                out.extend(_ptr(ctx, name, ip).reply.answer)
        return out
    seen: set[tuple[str, int, bytes]] = set()
    for key in sorted(index.services):
        svc = index.services[key]
        if not service_visible(kopts, svc) or not namespace_exposed(index, kopts, key[0]):
            continue
        for rec in _service_records(index, kopts, opts, svc, zone):
            ident = (rec.name.lower(), rec.rtype, rec.rdata)
            if ident not in seen:
                seen.add(ident)
                out.append(rec)
    return out


def _reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


def _service_records(
    index: ClusterIndex, kopts: Options, opts: ExternalOptions, svc: Service, zone: str
) -> list[RR]:
    """The records one Service has in the zone: its names and SRVs of its named ports."""
    ctx = _Ctx(index, kopts, opts, zone)
    owner = _under(f"{svc.name}.{svc.namespace}", zone)
    has_external = bool(svc.external_ips or svc.external_hosts)
    if opts.headless and not has_external and svc.headless:
        items = _endpoint_items(ctx, svc, "", "", "")
        out: list[RR] = []
        for item in items:
            target = _under(item.target.rstrip("."), zone)
            out.append(rr.address(owner, opts.ttl, item.host))
            out.append(rr.address(target, opts.ttl, item.host))
        ports = {p for a in index.addresses.get(svc.key, ()) for p in a.ports}
    else:
        items = _external_items(svc, "", "")
        out = []
        for rtype in (rr.A, rr.AAAA):
            out.extend(_shape(ctx, owner, rtype, items, ()).reply.answer)
        ports = set(svc.ports)
    for p in sorted(ports, key=lambda p: (p.name, p.protocol, p.port)):
        if not p.name:
            continue  # as the kubernetes DNS specification: no SRV for an unnamed port
        srv_name = _under(f"_{p.name}._{p.protocol}.{svc.name}.{svc.namespace}", zone)
        chosen = [i for i in items if i.port == p.port]
        if chosen:
            out.extend(_srv(ctx, srv_name, chosen, ()).reply.answer)
    return out

"""Answer a question about a cluster zone from one ClusterIndex snapshot.

The rules are the Kubernetes DNS specification (schema 1.1.0) and CoreDNS's `kubernetes` plugin:
a name is first resolved to a list of `Item`s (what CoreDNS calls msg.Service: a host that is an
IP or an external name, a port, and the name that owns it), then shaped per query type. Whether a
name exists (NODATA vs NXDOMAIN) falls out of the same lookup: a name exists when it yields items.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from kdns.cluster import clustername
from kdns.cluster.clustername import REVERSE_ZONES as REVERSE_ZONES
from kdns.cluster.clustername import ClusterName
from kdns.cluster.clustername import endpoint_label as endpoint_label
from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Key
from kdns.cluster.options import (
    Options,
    PodsMode,
    front_services,
    match_port,
    namespace_exposed,
    service_visible,
)
from kdns.dns import names
from kdns.dns import records as rr
from kdns.dns.frozen import fast_init
from kdns.dns.message import NOERROR, NXDOMAIN, REFUSED, Reply
from kdns.dns.records import RR

DNS_SCHEMA_VERSION = "1.1.0"
PLUGIN = "kubernetes"  # the metrics label of the replies written here
TXT_TTL = 28800
MAX_CHAIN = 8  # CNAMEs in one answer: CoreDNS backend_lookup.go and skydns both stop at 8


@dataclass(frozen=True, slots=True)
class Item:
    host: str  # an IP address, or the target name of an ExternalName service
    port: int  # -1 when the owner has no port
    target: str  # lower-case owner name used as an SRV target (zone not yet appended)
    external: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class Answer:
    reply: Reply
    chase: str | None = None  # out-of-zone CNAME target that A/AAAA still needs resolved
    exists: bool = True
    # The index keys (`ClusterIndex.versions`) the answer was derived from; None when it may
    # depend on anything in the index (apex, pods verified, PTR, CNAME chains).
    deps: tuple[Key, ...] | None = None


@dataclass(slots=True)
class _Ctx:
    index: ClusterIndex
    opts: Options
    zone: str  # lower-case zone matched
    zone_text: str  # the zone as written in the question (case kept)
    items: list[Item] = field(default_factory=list)


class _NoName(Exception):
    """The name does not exist (NXDOMAIN)."""


def soa_record(opts: Options, index: ClusterIndex, zone_text: str) -> RR:
    zone_text = zone_text if zone_text.endswith(".") else zone_text + "."
    return _soa(zone_text, opts.ttl, index.serial)


@functools.lru_cache(maxsize=256)
def _soa(zone_text: str, ttl: int, serial: int) -> RR:
    # Every negative answer carries one: built once per zone spelling and serial, not per
    # query (records are immutable, so one object serves them all).
    dotted = "" if zone_text == "." else zone_text
    return rr.soa(
        zone_text,
        min(ttl, 300),
        f"ns.dns.{dotted}",
        f"hostmaster.{dotted}",
        serial,
        7200,
        1800,
        86400,
        ttl,
    )


def _negative(ctx: _Ctx, rcode: int) -> Answer:
    zone_text = ctx.zone_text if ctx.zone_text.endswith(".") else ctx.zone_text + "."
    return _negative_answer(zone_text, ctx.opts.ttl, ctx.index.serial, rcode)


@functools.lru_cache(maxsize=256)
def _negative_answer(zone_text: str, ttl: int, serial: int, rcode: int) -> Answer:
    # The commonest cold answer (a name asked once, under a namespace that exists): one value
    # per zone spelling, serial and rcode, shared by every such query (values are immutable).
    reply = Reply(rcode=rcode, authority=(_soa(zone_text, ttl, serial),), aa=True, plugin=PLUGIN)
    return Answer(reply, exists=rcode != NXDOMAIN)


def _positive(
    answer: list[RR], additional: list[RR] | tuple[RR, ...] = (), chase: str | None = None
) -> Answer:
    return Answer(
        Reply(NOERROR, tuple(answer), (), tuple(additional), aa=True, plugin=PLUGIN), chase
    )


def answer(
    index: ClusterIndex, opts: Options, qname: str, qtype: int, cn: ClusterName | None = None
) -> Answer:
    """Answer `qname`/`qtype` for a name inside one of `opts.zones` (caller checked); `cn` is
    the name already parsed (the kubernetes plugin parses each query once)."""
    if cn is None:
        cn = clustername.parse_text(qname, opts.zones)
        if cn is None:
            raise ValueError(f"{qname} is not in {opts.zones}")
    ctx = _Ctx(index, opts, cn.zone, cn.zone_text)
    if qtype in (rr.AXFR, rr.IXFR):
        return Answer(Reply(rcode=REFUSED, plugin=PLUGIN))
    if cn.reverse:
        return _reverse(ctx, qname, cn.name, qtype)
    segs = cn.labels
    try:
        found = _forward_lookup(ctx, qname, segs, qtype)
    except _NoName:
        found = None
    result = _negative(ctx, NXDOMAIN) if found is None else found
    deps = clustername.dependencies(segs, opts.pods)
    if deps is None:
        return result
    return Answer(result.reply, result.chase, result.exists, deps)  # not replace(): hot path


def _forward_lookup(ctx: _Ctx, qname: str, segs: tuple[str, ...], qtype: int) -> Answer | None:
    """The answer, or None (or _NoName raised) when the name does not exist."""
    opts, index = ctx.opts, ctx.index
    if not segs:
        return _apex(ctx, qname, qtype)
    if segs == ("dns-version",):
        if qtype == rr.TXT:
            return _positive([rr.txt(qname, TXT_TTL, DNS_SCHEMA_VERSION)])
        return _negative(ctx, NOERROR)
    if segs[-1] == "dns" and len(segs) <= 2:
        if len(segs) == 1:
            return _negative(ctx, NOERROR)  # empty non-terminal above ns.dns.<zone>
        if segs[0] != "ns":
            raise _NoName
        # The addresses the apex NS glue carries (CoreDNS isDefaultNS + nsAddrs): the DNS
        # Service's IPs when this server backs one, else the server's own.
        want = rr.A if qtype == rr.A else rr.AAAA if qtype == rr.AAAA else 0
        seen: set[str] = set()
        recs = []
        for _, ip in _ns_hosts(ctx):
            if ip not in seen:
                seen.add(ip)
                rec = rr.address(qname, opts.ttl, ip)
                if rec.rtype == want:
                    recs.append(rec)
        return _positive(recs) if recs else _negative(ctx, NOERROR)
    kind = segs[-1]
    if kind not in ("svc", "pod"):
        raise _NoName
    if len(segs) == 1:
        return _negative(ctx, NOERROR)  # svc.<zone>, pod.<zone>: empty non-terminals
    namespace = segs[-2]
    if not namespace_exposed(index, opts, namespace):
        raise _NoName
    if len(segs) == 2:
        if kind == "pod" and opts.pods == PodsMode.DISABLED:
            raise _NoName
        return _negative(ctx, NOERROR)  # <ns>.svc.<zone>: exists as an empty non-terminal
    if kind == "pod":
        if len(segs) != 3:
            raise _NoName
        _pod_items(ctx, segs[0], namespace)
    else:
        rest = segs[:-3]
        service = segs[-3]
        endpoint = port = proto = ""
        if len(rest) == 1:
            endpoint = rest[0]
        elif len(rest) == 2:
            port, proto = rest[0].removeprefix("_"), rest[1].removeprefix("_")
        elif len(rest) > 2:
            raise _NoName  # more than two labels left of the service
        _service_items(ctx, service, namespace, endpoint, port, proto)
    if not ctx.items:
        return None  # the commonest miss (a name asked once): no exception to unwind
    return _shape(ctx, qname, qtype)


def _pod_items(ctx: _Ctx, label: str, namespace: str) -> None:
    mode = ctx.opts.pods
    if mode == PodsMode.DISABLED:
        return
    ip = clustername.pod_label_ip(label)
    if ip is None:
        return
    if mode == PodsMode.VERIFIED:
        pods = ctx.index.pods_by_ip.get(ip, ())
        if not any(p.namespace == namespace for p in pods):
            return
    ctx.items.append(Item(ip, -1, ""))


def _service_items(
    ctx: _Ctx, service: str, namespace: str, endpoint: str, port: str, proto: str
) -> None:
    index, opts = ctx.index, ctx.opts
    key: Key = (namespace, service)
    svc = index.services.get(key)
    if svc is None or not service_visible(opts, svc):
        return
    base = f"{service}.{namespace}.svc."
    if svc.type == "ExternalName":
        if endpoint or port or proto or not svc.external_name:
            return  # names below an ExternalName do not exist (coredns#5733)
        target = svc.external_name if svc.external_name.endswith(".") else svc.external_name + "."
        ctx.items.append(Item(target, -1, base, external=True))
        return
    # noendpoints: CoreDNS does not watch EndpointSlices at all, so every rule that reads
    # endpoints sees none (headless and endpoint names, and `ignore empty_service`).
    addrs = () if opts.noendpoints else index.addresses.get(key, ())
    if opts.ignore_empty_service and not svc.headless and not addrs:
        return
    if svc.headless or endpoint:
        for addr in addrs:
            label = endpoint_label(addr, opts.endpoint_pod_names)
            if endpoint and endpoint != label:
                continue
            target = f"{label}.{base}"
            if not addr.ports:
                if not (port or proto):
                    ctx.items.append(Item(addr.ip, -1, target))
                continue
            for p in addr.ports:
                if match_port(port, proto, p):
                    ctx.items.append(Item(addr.ip, p.port, target))
        return
    for p in svc.ports:
        if match_port(port, proto, p):
            for ip in svc.cluster_ips:
                ctx.items.append(Item(ip, p.port, base))
    if not svc.ports and not (port or proto):
        for ip in svc.cluster_ips:
            ctx.items.append(Item(ip, -1, base))


def shape(
    index: ClusterIndex, opts: Options, qname: str, qtype: int, zone_text: str, items: list[Item]
) -> Answer:
    """The answer for `items` found for `qname` (NXDOMAIN if none): for other name forms of a
    zone, such as multicluster ones, that resolve names to items their own way."""
    ctx = _Ctx(index, opts, names.normalize(zone_text), zone_text, items)
    return _shape(ctx, qname, qtype) if items else _negative(ctx, NXDOMAIN)


def _shape(ctx: _Ctx, qname: str, qtype: int) -> Answer:
    ttl = ctx.opts.ttl
    items = ctx.items
    external = next((i for i in items if i.external), None)
    if external is not None:
        # Spec 2.5: the CNAME "must exist", and a CNAME answers every type (RFC 1034 3.6.2).
        # CoreDNS keeps it only for A/AAAA/CNAME and answers NODATA otherwise; see
        # docs/kubernetes-dns.md. `chase` lets the caller follow the target for the same type.
        cname = rr.cname(qname, ttl, external.host)
        return _positive([cname], chase=None if qtype == rr.CNAME else external.host)
    if qtype in (rr.A, rr.AAAA):
        seen: set[str] = set()
        out = []
        for item in items:
            if item.host in seen:
                continue
            seen.add(item.host)
            rec = rr.address(qname, ttl, item.host)
            if rec.rtype == qtype:
                out.append(rec)
        return _positive(out) if out else _negative(ctx, NOERROR)
    if qtype == rr.SRV:
        return _srv(ctx, qname)
    return _negative(ctx, NOERROR)


def _srv(ctx: _Ctx, qname: str) -> Answer:
    ttl = ctx.opts.ttl
    # CoreDNS backend_lookup.go SRV: priority 0; weight floor(100 / N) with N counting every
    # item found (port-less ones and later duplicates too), and never below 1.
    weight = max(1, 100 // len(ctx.items))
    answers: list[RR] = []
    extra: list[RR] = []
    seen_srv: set[tuple[str, int]] = set()
    seen_glue: set[tuple[str, str]] = set()
    for item in ctx.items:
        if item.port < 0:
            continue  # no port: the name has addresses but no SRV (spec 2.3.2, 2.4.2)
        target = item.target + ctx.zone_text
        key = target.lower()
        if (key, item.port) not in seen_srv:
            seen_srv.add((key, item.port))
            answers.append(rr.srv(qname, ttl, 0, weight, item.port, target))
        if (key, item.host) not in seen_glue:
            seen_glue.add((key, item.host))
            extra.append(rr.address(target, ttl, item.host))
    return _positive(answers, extra) if answers else _negative(ctx, NOERROR)


def _apex(ctx: _Ctx, qname: str, qtype: int) -> Answer:
    opts = ctx.opts
    if qtype == rr.SOA:
        return _positive([soa_record(opts, ctx.index, qname)])
    if qtype == rr.NS:
        return _ns(ctx, qname)
    return _negative(ctx, NOERROR)


def _ns_zone(ctx: _Ctx) -> str:
    """The zone NS targets live in: a reverse zone's are named in the primary cluster zone,
    where they resolve (CoreDNS would name them ns.dns.in-addr.arpa., which does not)."""
    if ctx.zone.endswith(REVERSE_ZONES):
        primary = ctx.opts.primary_zone
        if not primary.endswith(REVERSE_ZONES):
            return primary
    return ctx.zone_text


def _ns_hosts(ctx: _Ctx) -> list[tuple[str, str]]:
    """(name, address) of each name server, as CoreDNS ns.go nsAddrs.

    Every Service with one of the server's own IPs among its endpoints is a name server:
    its ClusterIPs under its name, or for a headless Service each endpoint under its own name.
    When there is none (the server is not behind a Service, or endpoints are not watched), the
    server's IPs under ns.dns.<zone>. Services the filters hide are skipped, so an NS target
    always resolves.
    """
    index, opts = ctx.index, ctx.opts
    zone = _ns_zone(ctx)
    out: list[tuple[str, str]] = []
    for svc in front_services(index, opts, named=True):
        base = f"{svc.name}.{svc.namespace}.svc.{zone}"
        if svc.headless:
            for a in index.addresses.get(svc.key, ()):
                out.append((f"{endpoint_label(a, opts.endpoint_pod_names)}.{base}", a.ip))
        else:
            out.extend((base, cip) for cip in svc.cluster_ips)
    if not out:
        out = [(f"ns.dns.{zone}", ip) for ip in opts.server_ips if ip]
    return out


def _ns(ctx: _Ctx, qname: str) -> Answer:
    """Apex NS: one record per distinct name server name, glue for every address.

    With no known address the NS still names ns.dns.<zone> (an apex always has an NS; CoreDNS
    answers NODATA there).
    """
    ttl = ctx.opts.ttl
    hosts = _ns_hosts(ctx)
    answers: list[RR] = []
    glue: list[RR] = []
    names_seen: set[str] = set()
    glue_seen: set[tuple[str, str]] = set()
    for name, ip in hosts:
        if name not in names_seen:
            names_seen.add(name)
            answers.append(rr.ns(qname, ttl, name))
        if (name, ip) not in glue_seen:
            glue_seen.add((name, ip))
            glue.append(rr.address(name, ttl, ip))
    if not answers:
        answers.append(rr.ns(qname, ttl, f"ns.dns.{_ns_zone(ctx)}"))
    return _positive(answers, glue)


def _reverse(ctx: _Ctx, qname: str, name: str, qtype: int) -> Answer:
    if name == ctx.zone:
        return _apex(ctx, qname, qtype)  # SOA and NS of the reverse zone itself
    ip = names.ptr_to_ip(name)
    targets = ptr_targets(ctx.index, ctx.opts, ip) if ip else []
    if not targets:
        return _negative(ctx, NXDOMAIN)
    if qtype != rr.PTR:
        # CoreDNS answers NXDOMAIN here (its fake A lookup cannot parse a reverse name); the
        # name exists, so the answer is NODATA.
        return _negative(ctx, NOERROR)
    return _positive([rr.ptr(qname, ctx.opts.ttl, t) for t in targets])


def ptr_targets(index: ClusterIndex, opts: Options, ip: str) -> list[str]:
    """Names for an IP: the first service with that ClusterIP, else every endpoint with it.

    CoreDNS reverse.go; unlike CoreDNS, `namespace_labels` and `labels` hide PTRs as they hide
    every other record of a service.
    """
    zone = opts.primary_zone
    for key in index.cluster_ip_owners.get(ip, ()):
        svc = index.services.get(key)
        if svc and namespace_exposed(index, opts, key[0]) and service_visible(opts, svc):
            return [f"{svc.name}.{svc.namespace}.svc.{zone}"]
    out: list[str] = []
    if opts.noendpoints:
        return out
    for addr in index.ip_owners(ip):
        key = addr.service_key
        svc = index.services.get(key)
        if svc is None or not namespace_exposed(index, opts, key[0]):
            continue
        if not service_visible(opts, svc):
            continue
        target = f"{endpoint_label(addr, opts.endpoint_pod_names)}.{key[1]}.{key[0]}.svc.{zone}"
        if target not in out:
            out.append(target)
    return out


def lookup(
    index: ClusterIndex, opts: Options, qname: str, qtype: int, cn: ClusterName | None = None
) -> Answer:
    """`answer()` plus in-zone CNAME chasing (ExternalName to a cluster name).

    The chain keeps every CNAME even when the end has no record of the asked type (spec 2.5;
    CoreDNS drops the CNAME then, see ext-005); a negative end adds its SOA so the NODATA can
    be cached. Chains stop at MAX_CHAIN CNAMEs and at a loop: the client follows the last
    CNAME itself. A target outside the zones is left in `chase` for the caller, which
    resolves it through the server (forward).
    """
    first = answer(index, opts, qname, qtype, cn)
    if first.chase is None:
        return first
    chain = list(first.reply.answer)
    extra = list(first.reply.additional)
    authority: tuple[RR, ...] = ()
    seen = {names.normalize(qname)}
    chase: str | None = first.chase
    while chase is not None:
        target = names.normalize(chase)
        if target in seen:
            chase = None
            break
        if names.longest_zone(target, opts.zones) in (None, *opts.multicluster):
            break  # resolved by the caller (a multicluster zone's names: kdns.cluster.multicluster)
        if opts.zonal and "._zone." in target:
            break  # a zonal name (kdns.cluster.zonal), also resolved by the caller
        seen.add(target)
        nxt = answer(index, opts, chase, qtype)
        if nxt.chase is not None and len(chain) >= MAX_CHAIN:
            chase = None  # one more CNAME would pass the bound
            break
        chain.extend(nxt.reply.answer)
        extra.extend(nxt.reply.additional)
        if nxt.reply.rcode != NOERROR or not nxt.reply.answer:
            # The end of the chain has nothing of this type (or does not exist): NOERROR with
            # the CNAMEs, as for an out-of-zone target, and the SOA for negative caching.
            authority = nxt.reply.authority
            chase = None
            break
        chase = nxt.chase
    reply = Reply(NOERROR, tuple(chain), authority, tuple(extra), aa=True, plugin=PLUGIN)
    return Answer(reply, chase)

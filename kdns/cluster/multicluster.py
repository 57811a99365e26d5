"""Names of a multicluster zone (`multicluster ZONES` of the `kubernetes` directive).

As CoreDNS's kubernetes plugin does with the Multi-Cluster Services API (KEP-1645), in a
multicluster zone such as `clusterset.local.` a service name means a ServiceImport, not a
Service:

- `<svc>.<ns>.svc.<zone>`: a ClusterSetIP import answers its `spec.ips` (A/AAAA) and one SRV per
  port; a Headless import answers every ready endpoint of its EndpointSlices, of every cluster;
- `<endpoint>.<cluster-id>.<svc>.<ns>.svc.<zone>`: that endpoint in that cluster. Two labels left
  of the service are an endpoint and a cluster id, unless one starts with `_`: then they are
  `_port._proto` (CoreDNS parse.go). SRV targets of endpoints have this form;
- `<endpoint>.<svc>.<ns>.svc.<zone>` names no endpoint (its cluster id is missing): NXDOMAIN.

Every other name of the zone (apex, dns-version, ns.dns, `<ns>.svc`, pods) is answered as in a
cluster zone. Answers read the whole index (`deps` None): they stay valid until the next publish.
"""

from __future__ import annotations

from collections.abc import Sequence

from kdns.cluster import answer, clustername
from kdns.cluster.answer import Answer, Item
from kdns.cluster.clustername import ClusterName
from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Port
from kdns.cluster.options import Options, namespace_exposed
from kdns.dns import records as rr


def lookup(
    index: ClusterIndex, opts: Options, qname: str, qtype: int, cn: ClusterName | None = None
) -> Answer:
    """Answer `qname`/`qtype` for a name inside one of `opts.multicluster` (caller checked);
    `cn` is the name already parsed (the kubernetes plugin parses each query once)."""
    if cn is None:
        cn = clustername.parse_text(qname, opts.zones)
    if cn is None or cn.zone == "." or qtype in (rr.AXFR, rr.IXFR):
        return answer.lookup(index, opts, qname, qtype, cn)
    segs = cn.labels
    if len(segs) < 3 or segs[-1] != "svc":
        return answer.lookup(index, opts, qname, qtype, cn)
    return answer.shape(index, opts, qname, qtype, cn.zone_text, _items(index, opts, segs))


def _items(index: ClusterIndex, opts: Options, segs: Sequence[str]) -> list[Item]:
    namespace, service, rest = segs[-2], segs[-3], segs[:-3]
    if len(rest) > 2 or not namespace_exposed(index, opts, namespace):
        return []
    imp = index.imports.get((namespace, service))
    if imp is None or (opts.labels is not None and not opts.labels.matches(imp.labels)):
        return []
    endpoint = cluster = port = proto = ""
    if len(rest) == 1:
        endpoint = rest[0]  # matches only endpoints whose slice names no cluster
    elif len(rest) == 2:
        if rest[0].startswith("_") or rest[1].startswith("_"):
            port, proto = rest[0].removeprefix("_"), rest[1].removeprefix("_")
        else:
            endpoint, cluster = rest
    base = f"{service}.{namespace}.svc."
    items: list[Item] = []
    if imp.headless or endpoint:
        # noendpoints: the clusterset's EndpointSlices are not read either.
        addrs = () if opts.noendpoints else index.import_addresses.get(imp.key, ())
        for addr in addrs:
            # Named as the local zone's endpoints, so the two zones agree on what a name means.
            label = answer.endpoint_label(addr, opts.endpoint_pod_names)
            if endpoint and (endpoint != label or cluster != addr.cluster):
                continue
            target = f"{label}.{addr.cluster}.{base}" if addr.cluster else f"{label}.{base}"
            _add(items, addr.ip, addr.ports, target, port, proto)
        return items
    for ip in imp.ips:
        _add(items, ip, imp.ports, base, port, proto)
    return items


def _add(
    items: list[Item], ip: str, ports: tuple[Port, ...], target: str, port: str, proto: str
) -> None:
    """Items of `ip` for each port matching `_port._proto`; one without a port when it has
    none and the name asks for none (it still has addresses, but no SRV)."""
    if not ports:
        if not (port or proto):
            items.append(Item(ip, -1, target))
        return
    for p in ports:
        if (not port or port == p.name) and (not proto or proto == p.protocol):
            items.append(Item(ip, p.port, target))

"""Zone-scoped names of headless services (the `zonal` option of the `kubernetes` directive).

As CoreDNS's kubernetes plugin (master after v1.14.7), with `zonal` a headless service also has
names that select its endpoints by their topology zone, the `zone` field EndpointSlices carry
(set from the node's `topology.kubernetes.io/zone` label):

- `<zone>.pin._zone.<svc>.<ns>.svc.<cluster-zone>`: the ready endpoints in `<zone>`; none there
  (a drained zone, or a typo) is NODATA, never NXDOMAIN, so a search list does not go on;
- `<zone>.prefer._zone.<svc>.<ns>.svc.<cluster-zone>`: the same, but when `<zone>` has none,
  every ready endpoint of the service.

A zone value may contain dots: it is every label left of the directive. A/AAAA answer the
addresses, SRV one record per endpoint port with the endpoint's own name as target (and its
address as glue), as for the service name; other types are NODATA. The names exist only for a
headless service of an exposed namespace: a ClusterIP or ExternalName service, a missing one,
another directive than `pin`/`prefer`, a pod name or a multicluster zone keep the NXDOMAIN such
a too-long name has without the option. Answers depend on the service and its namespace only,
like every other `<...>.<svc>.<ns>.svc` answer (their index versions).
"""

from __future__ import annotations

from collections.abc import Sequence

from kdns.cluster import answer, clustername
from kdns.cluster.answer import Answer, Item
from kdns.cluster.clustername import ClusterName
from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Endpoint, Key
from kdns.cluster.options import Options, namespace_exposed, service_visible
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, Reply

ANCHOR = "_zone"
DIRECTIVES = ("pin", "prefer")


def parse(segs: Sequence[str]) -> tuple[str, bool, str, str] | None:
    """(zone, prefer, service, namespace) of a zonal name, given the labels left of the cluster
    zone; None when the labels are not of that form."""
    if len(segs) < 6 or segs[-1] != "svc" or segs[-4] != ANCHOR or segs[-5] not in DIRECTIVES:
        return None
    return ".".join(segs[:-5]), segs[-5] == "prefer", segs[-3], segs[-2]


def lookup(
    index: ClusterIndex, opts: Options, qname: str, qtype: int, cn: ClusterName | None = None
) -> Answer | None:
    """The answer for a zonal name, or None when `qname` is not one (the caller answers it
    as any other name: `answer.lookup`). `cn` is the name already parsed (the kubernetes
    plugin parses each query once); without it, `qname` is parsed here."""
    if not opts.zonal or qtype in (rr.AXFR, rr.IXFR) or "._zone." not in qname.lower():
        return None  # the last test keeps the option nearly free for every other name
    if cn is None:
        cn = clustername.parse_text(qname, opts.zones)
        if cn is None:
            return None
    if cn.zone in opts.multicluster or cn.reverse:
        return None
    parsed = parse(cn.labels)
    if parsed is None:
        return None
    topo, prefer, service, namespace = parsed
    zone_text = cn.zone_text
    deps: tuple[Key, ...] = ((namespace, service), ("", namespace))
    addrs = _addresses(index, opts, service, namespace)
    if addrs is None:  # no such name: NXDOMAIN, as answer.shape gives for no items
        result = answer.shape(index, opts, qname, qtype, zone_text, [])
        return Answer(result.reply, exists=False, deps=deps)
    chosen = [a for a in addrs if a.zone == topo]
    if not chosen and prefer:
        chosen = list(addrs)
    items = _items(chosen, service, namespace, opts.endpoint_pod_names)
    if not items:
        # The name exists whether or not the zone holds endpoints.
        soa = answer.soa_record(opts, index, zone_text)
        return Answer(Reply(NOERROR, authority=(soa,), aa=True, plugin=answer.PLUGIN), deps=deps)
    result = answer.shape(index, opts, qname, qtype, zone_text, items)
    return Answer(result.reply, exists=True, deps=deps)


def _addresses(
    index: ClusterIndex, opts: Options, service: str, namespace: str
) -> tuple[Endpoint, ...] | None:
    """The ready addresses of a visible headless service; None when it has no zonal names."""
    if not namespace_exposed(index, opts, namespace):
        return None
    svc = index.services.get((namespace, service))
    if svc is None or not svc.headless or svc.type == "ExternalName":
        return None
    if not service_visible(opts, svc):
        return None
    return index.addresses.get((namespace, service), ())


def _items(addrs: list[Endpoint], service: str, namespace: str, pod_names: bool) -> list[Item]:
    """One item per endpoint port (one without a port when its slice has none), owned by the
    endpoint's own name, as the service name's items are."""
    base = f"{service}.{namespace}.svc."
    items: list[Item] = []
    for addr in addrs:
        target = f"{answer.endpoint_label(addr, pod_names)}.{base}"
        if not addr.ports:
            items.append(Item(addr.ip, -1, target))
        items.extend(Item(addr.ip, p.port, target) for p in addr.ports)
    return items

"""The records of a cluster zone for an outgoing zone transfer, as CoreDNS's kubernetes plugin
lists them (plugin/kubernetes/xfr.go), from one ClusterIndex snapshot.

In order: the SOA; the apex NS records and their addresses; then per visible service (by
namespace and name), with the plugin's TTL:

- ClusterIP (also NodePort, LoadBalancer): A/AAAA `<svc>.<ns>.svc.<zone>` per cluster IP, and per
  port an SRV at that name (`0 100 <port> <svc>.<ns>.svc.<zone>`), plus one at
  `_<port>._<proto>.<svc>...` for a named port;
- headless: per ready endpoint address an A/AAAA at the service name and at
  `<endpoint>.<svc>...`, and per named port an SRV at `_<port>._<proto>.<svc>...` targeting the
  endpoint, weighted 100/N over the N addresses;
- ExternalName: the CNAME to its target (not an IP target);

and the SOA again. Reverse zones are not transferred (CoreDNS neither). Duplicates (an address
in two slices) are listed once.
"""

from __future__ import annotations

from kdns.cluster import answer
from kdns.cluster.answer import endpoint_label
from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Service
from kdns.cluster.options import Options, namespace_exposed
from kdns.dns import records as rr
from kdns.dns.records import RR


def records(index: ClusterIndex, opts: Options, zone: str) -> tuple[RR, ...] | None:
    """Every record of `zone` (lower case, absolute), or None when it is not one of the plugin's
    forward zones."""
    if zone not in opts.zones or zone.endswith(answer.REVERSE_ZONES):
        return None
    soa = answer.soa_record(opts, index, zone)
    apex = answer.lookup(index, opts, zone, rr.NS).reply
    body: dict[RR, None] = dict.fromkeys([soa, *apex.answer, *apex.additional])
    for key in sorted(index.services):
        svc = index.services[key]
        if opts.labels is not None and not opts.labels.matches(svc.labels):
            continue
        if not namespace_exposed(index, opts, svc.namespace):
            continue
        body.update(dict.fromkeys(_service(index, opts, svc, zone)))
    return (*body, soa)


def _service(index: ClusterIndex, opts: Options, svc: Service, zone: str) -> list[RR]:
    ttl = opts.ttl
    base = f"{svc.name}.{svc.namespace}.svc.{zone}".lower()
    out: list[RR] = []
    if svc.type == "ExternalName":
        target = svc.external_name
        if target and not rr.is_address(target):
            out.append(rr.cname(base, ttl, target if target.endswith(".") else target + "."))
        return out
    if not svc.headless:
        out.extend(rr.address(base, ttl, ip) for ip in svc.cluster_ips)
        for port in svc.ports:
            out.append(rr.srv(base, ttl, 0, 100, port.port, base))
            if port.name:
                named = f"_{port.name}._{port.protocol}.{base}"
                out.append(rr.srv(named, ttl, 0, 100, port.port, base))
        return out
    addresses = index.addresses.get(svc.key, ())
    weight = 100 // len(addresses) if addresses else 0
    for addr in addresses:
        host = f"{endpoint_label(addr, opts.endpoint_pod_names)}.{base}".lower()
        out.append(rr.address(base, ttl, addr.ip))
        out.append(rr.address(host, ttl, addr.ip))
        for port in addr.ports:
            if port.name:
                named = f"_{port.name}._{port.protocol}.{base}"
                out.append(rr.srv(named, ttl, 0, weight, port.port, host))
    return out

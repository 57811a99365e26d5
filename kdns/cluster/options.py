"""What the `kubernetes` directive configures, in the form cluster lookups need, and the
visibility rules every cluster answer applies (namespaces, labels, ports): one place for the
answers of the cluster, external, multicluster and zonal names and for zone transfers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kdns.cluster.clustername import REVERSE_ZONES
from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Port, Service
from kdns.cluster.selector import Selector


class PodsMode(StrEnum):
    """`pods disabled|insecure|verified`: whether and how `<ip>.<ns>.pod.<zone>` names answer."""

    DISABLED = "disabled"  # no pod names
    INSECURE = "insecure"  # any well-formed dashed IP answers itself
    VERIFIED = "verified"  # only the IP of a running pod in that namespace


@dataclass(frozen=True, slots=True)
class Options:
    """What the `kubernetes` directive configures, in the form lookups need."""

    zones: tuple[str, ...] = ("cluster.local.",)
    ttl: int = 5
    pods: PodsMode = PodsMode.DISABLED
    namespaces: frozenset[str] = frozenset()
    namespace_labels: Selector | None = None
    labels: Selector | None = None
    endpoint_pod_names: bool = False
    ignore_empty_service: bool = False
    noendpoints: bool = False
    server_ips: tuple[str, ...] = ()
    multicluster: tuple[str, ...] = ()  # zones answered from ServiceImports
    zonal: bool = False  # `<zone>.pin|prefer._zone.<svc>...` names (kdns.cluster.zonal)

    @property
    def primary_zone(self) -> str:
        for zone in self.zones:
            if not zone.endswith(REVERSE_ZONES):
                return zone
        return self.zones[0]


def namespace_exposed(index: ClusterIndex, opts: Options, namespace: str) -> bool:
    if opts.namespaces and namespace not in opts.namespaces:
        return False
    if opts.namespace_labels is not None:
        ns = index.namespaces.get(namespace)
        return ns is not None and opts.namespace_labels.matches(ns.labels)
    return index.namespace_exists(namespace)


def service_visible(opts: Options, svc: Service) -> bool:
    return opts.labels is None or opts.labels.matches(svc.labels)


def match_port(want_port: str, want_proto: str, port: Port) -> bool:
    if want_port and want_port != port.name:
        return False
    return not (want_proto and want_proto != port.protocol)


def front_services(index: ClusterIndex, opts: Options, *, named: bool = False) -> list[Service]:
    """The Services that front this DNS server (CoreDNS's nsAddrs): each visible Service with
    one of the server's own IPs among its endpoints, once. With `named`, only those whose
    namespace is exposed too, for answers that name the Service (an NS target must resolve).
    Empty with `noendpoints`, which reads no endpoints."""
    out: list[Service] = []
    if opts.noendpoints:
        return out
    done: set[tuple[str, str]] = set()
    for ip in opts.server_ips:
        for addr in index.ip_owners(ip):
            key = addr.service_key
            svc = index.services.get(key)
            if key in done or svc is None or not service_visible(opts, svc):
                continue
            if named and not namespace_exposed(index, opts, key[0]):
                continue
            done.add(key)
            out.append(svc)
    return out

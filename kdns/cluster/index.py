"""The cluster index: an immutable snapshot, and the builder that publishes new ones.

Sources (a snapshot file, the Kubernetes watches) feed an `IndexBuilder` with slim objects. Each
`publish()` returns a new frozen `ClusterIndex` whose derived maps (ready addresses per service,
owners of every IP for PTR, pods by IP) are already built, so a lookup reads one consistent
snapshot and does no work beyond dictionary reads. Derived data is recomputed only for services
whose objects changed since the last publish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kdns.cluster.cowmap import CowMap
from kdns.cluster.imports import ClusterAddress, ImportsBuilder
from kdns.cluster.objects import Endpoint, Key, Namespace, Pod, Service, ServiceImport, Slice

KINDS = ("Namespace", "Service", "EndpointSlice", "Pod", "ServiceImport")


_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ClusterIndex:
    services: Mapping[Key, Service] = field(default_factory=dict)
    # The published endpoint addresses of each service: the records of its slices (ready
    # ones, or all with publishNotReadyAddresses), in slice name order.
    addresses: Mapping[Key, tuple[Endpoint, ...]] = field(default_factory=dict)
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    service_namespaces: frozenset[str] = frozenset()
    pods_by_ip: Mapping[str, tuple[Pod, ...]] = field(default_factory=dict)
    cluster_ip_owners: Mapping[str, tuple[Key, ...]] = field(default_factory=dict)
    # Services by external IP (spec.externalIPs, load balancer ingress): k8s_external's PTRs.
    external_ip_owners: Mapping[str, tuple[Key, ...]] = field(default_factory=dict)
    # The same records by IP, for PTRs (each names its service: `service_key`). An IP almost
    # always has one owner, kept bare: a 1-tuple per address was 5 MiB and 100,000 more
    # objects for the collector to walk at 100,000 endpoints. Read it with `ip_owners`.
    endpoint_ip_owners: Mapping[str, Endpoint | tuple[Endpoint, ...]] = field(default_factory=dict)
    # The generation at which each service key (namespace, name), and each namespace
    # ("", namespace), last changed: an answer that depends only on those stays valid across
    # publishes that touch other objects (the fast path keeps serving it).
    versions: Mapping[Key, int] = field(default_factory=dict)
    # Multicluster (kdns.cluster.imports): ServiceImports and their clusterset endpoints.
    imports: Mapping[Key, ServiceImport] = field(default_factory=dict)
    import_addresses: Mapping[Key, tuple[ClusterAddress, ...]] = field(default_factory=dict)
    synced: bool = False
    serial: int = 0
    generation: int = 0

    def ip_owners(self, ip: str) -> tuple[Endpoint, ...]:
        """The published endpoint records with address `ip`."""
        return _owners(self.endpoint_ip_owners.get(ip, ()))

    def namespace_exists(self, namespace: str) -> bool:
        # A snapshot may omit Namespace objects; a namespace that holds services exists too.
        return namespace in self.namespaces or namespace in self.service_namespaces


def _owners(found: Endpoint | tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    return found if isinstance(found, tuple) else (found,)


def _addresses(service: Service, slices: Iterable[Slice]) -> tuple[Endpoint, ...]:
    """The slices' own records, filtered and ordered: no new object per address."""
    ordered = sorted(slices, key=lambda s: s.name)
    every = service.publish_not_ready
    out = tuple(ep for sl in ordered for ep in sl.endpoints if every or ep.ready)
    if len(ordered) == 1 and len(out) == len(ordered[0].endpoints):
        return ordered[0].endpoints  # the same records: share the slice's tuple
    return out


class IndexBuilder:
    """Mutable state fed by sources; `publish()` snapshots it. Not thread-safe (one event loop)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # The maps a snapshot exposes are copy-on-write: publishing shares them with the snapshot
        # and the next write copies only the shard it touches.
        self._services: CowMap[Key, Service] = CowMap()
        self._slices: dict[Key, Slice] = {}
        # Names of each service's slices (all in its namespace): a tuple, as most services have
        # one slice and a set would cost 4 times the memory at 10k services.
        self._slices_of: dict[Key, tuple[str, ...]] = {}
        self._pods: dict[Key, Pod] = {}
        self._namespaces: CowMap[str, Namespace] = CowMap()
        self._addresses: CowMap[Key, tuple[Endpoint, ...]] = CowMap()
        self._ep_owners: CowMap[str, Endpoint | tuple[Endpoint, ...]] = CowMap()
        self._cip_owners: CowMap[str, tuple[Key, ...]] = CowMap()
        self._ext_owners: CowMap[str, tuple[Key, ...]] = CowMap()
        self._pods_by_ip: CowMap[str, tuple[Pod, ...]] = CowMap()
        self._svc_ns_count: dict[str, int] = {}
        self._svc_namespaces: frozenset[str] = frozenset()
        self._svc_namespaces_stale = False  # a namespace gained its first or lost its last service
        self._dirty: set[Key] = set()
        self._ns_dirty: set[str] = set()
        self._versions: CowMap[Key, int] = CowMap()
        self._synced_kinds: set[str] = set()
        self._imports = ImportsBuilder()
        self._required_kinds: set[str] = {"Namespace", "Service", "EndpointSlice"}
        self._changed = True
        self._serial = int(clock())
        self._generation = 0
        self.current = ClusterIndex()

    # -- feeding ---------------------------------------------------------------------------
    def require(self, kinds: Iterable[str]) -> None:
        self._required_kinds = set(kinds)

    def mark_synced(self, kind: str) -> None:
        if kind not in self._synced_kinds:
            self._synced_kinds.add(kind)
            self._changed = True

    @property
    def synced(self) -> bool:
        return self._required_kinds <= self._synced_kinds

    def upsert(self, obj: Service | Slice | Pod | Namespace | ServiceImport) -> None:
        if isinstance(obj, ServiceImport):
            self._imports.upsert_import(obj)
        elif isinstance(obj, Service):
            old = self._services.get(obj.key)
            if old == obj:
                return  # e.g. an update of fields DNS does not read (annotations, selector)
            self._changed = True
            if old is not None:
                self._drop_cluster_ips(old)
            else:
                count = self._svc_ns_count.get(obj.namespace, 0)
                self._svc_ns_count[obj.namespace] = count + 1
                if count == 0:
                    self._svc_namespaces_stale = True
                    self._ns_dirty.add(obj.namespace)
            self._services[obj.key] = obj
            for ip in obj.cluster_ips:
                self._cip_owners[ip] = (*self._cip_owners.get(ip, ()), obj.key)
            for ip in obj.external_ips:
                self._ext_owners[ip] = (*self._ext_owners.get(ip, ()), obj.key)
            self._dirty.add(obj.key)
        elif isinstance(obj, Slice):
            self._imports.upsert_slice(obj)
            old_slice = self._slices.get(obj.key)
            if old_slice == obj:
                return
            self._changed = True
            if old_slice is not None and old_slice.service_key != obj.service_key:
                self._unlink_slice(old_slice)
            self._slices[obj.key] = obj
            skey = obj.service_key
            members = self._slices_of.get(skey, ())
            if obj.name not in members:
                self._slices_of[skey] = (*members, obj.name)
            self._dirty.add(skey)
        elif isinstance(obj, Pod):
            old_pod = self._pods.get(obj.key)
            if old_pod == obj:
                return
            self._changed = True
            if old_pod is not None:
                self._drop_pod_ips(old_pod)
            self._pods[obj.key] = obj
            if not obj.terminating:
                for ip in obj.ips:
                    self._pods_by_ip[ip] = (*self._pods_by_ip.get(ip, ()), obj)
        elif self._namespaces.get(obj.name) != obj:
            self._changed = True
            self._namespaces[obj.name] = obj
            self._ns_dirty.add(obj.name)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._changed = True
        if kind == "Service":
            old = self._services.pop(key, None)
            if old is not None:
                self._drop_cluster_ips(old)
                left = self._svc_ns_count.get(namespace, 1) - 1
                if left:
                    self._svc_ns_count[namespace] = left
                else:
                    self._svc_ns_count.pop(namespace, None)
                    self._svc_namespaces_stale = True
                    self._ns_dirty.add(namespace)
            self._dirty.add(key)
        elif kind == "ServiceImport":
            self._imports.delete_import(key)
        elif kind == "EndpointSlice":
            self._imports.delete_slice(key)
            old_slice = self._slices.pop(key, None)
            if old_slice is not None:
                self._unlink_slice(old_slice)
        elif kind == "Pod":
            old_pod = self._pods.pop(key, None)
            if old_pod is not None:
                self._drop_pod_ips(old_pod)
        elif kind == "Namespace" and self._namespaces.pop(name, None) is not None:
            self._ns_dirty.add(name)

    def replace_all(
        self, kind: str, objects: Iterable[Service | Slice | Pod | Namespace | ServiceImport]
    ) -> None:
        """Make `kind` hold exactly `objects` (a relist): what is missing was deleted meanwhile."""
        fresh = list(objects)
        if kind == "ServiceImport":
            keep: set[tuple[str, str]] = {o.key for o in fresh if isinstance(o, ServiceImport)}
            existing = self._imports.import_keys()
        elif kind == "Service":
            keep = {o.key for o in fresh if isinstance(o, Service)}
            existing = list(self._services)
        elif kind == "EndpointSlice":
            keep = {o.key for o in fresh if isinstance(o, Slice)}
            existing = list(self._slices)
        elif kind == "Pod":
            keep = {o.key for o in fresh if isinstance(o, Pod)}
            existing = list(self._pods)
        else:
            keep = {("", o.name) for o in fresh if isinstance(o, Namespace)}
            existing = [("", n) for n in self._namespaces]
        for ns, name in existing:
            if (ns, name) not in keep:
                self.delete(kind, ns, name)
        for obj in fresh:
            self.upsert(obj)

    # -- publishing --------------------------------------------------------------------------
    def publish(self) -> ClusterIndex:
        """A new snapshot if anything changed since the last one, else the current one."""
        if not self._changed and not self._imports.changed:
            return self.current
        self._generation += 1
        for key in self._dirty:
            self._recompute(key)
            self._versions[key] = self._generation
        self._dirty.clear()
        for ns in self._ns_dirty:
            self._versions[("", ns)] = self._generation
        self._ns_dirty.clear()
        if self._svc_namespaces_stale:
            self._svc_namespaces = frozenset(self._svc_ns_count)
            self._svc_namespaces_stale = False
        self._changed = False
        imports, import_addresses = self._imports.freeze()
        self._serial = max(self._serial + 1, int(self._clock()))
        self.current = ClusterIndex(
            services=self._services.freeze(),
            addresses=self._addresses.freeze(),
            namespaces=self._namespaces.freeze(),
            service_namespaces=self._svc_namespaces,
            pods_by_ip=self._pods_by_ip.freeze(),
            cluster_ip_owners=self._cip_owners.freeze(),
            external_ip_owners=self._ext_owners.freeze(),
            endpoint_ip_owners=self._ep_owners.freeze(),
            versions=self._versions.freeze(),
            imports=imports,
            import_addresses=import_addresses,
            synced=self.synced,
            serial=self._serial,
            generation=self._generation,
        )
        return self.current

    def _recompute(self, key: Key) -> None:
        for addr in self._addresses.pop(key, ()):
            owners = tuple(
                o for o in _owners(self._ep_owners.get(addr.ip, ())) if o.service_key != key
            )
            if owners:
                self._ep_owners[addr.ip] = owners[0] if len(owners) == 1 else owners
            else:
                self._ep_owners.pop(addr.ip, None)
        service = self._services.get(key)
        if service is None:
            return
        slices = [self._slices[(key[0], name)] for name in self._slices_of.get(key, ())]
        addrs = _addresses(service, slices)
        if addrs:
            self._addresses[key] = addrs
        for addr in addrs:
            held = self._ep_owners.get(addr.ip)
            self._ep_owners[addr.ip] = addr if held is None else (*_owners(held), addr)

    def _unlink_slice(self, sl: Slice) -> None:
        skey = sl.service_key
        members = tuple(n for n in self._slices_of.get(skey, ()) if n != sl.name)
        if members:
            self._slices_of[skey] = members
        else:
            self._slices_of.pop(skey, None)
        self._dirty.add(skey)

    def _drop_cluster_ips(self, svc: Service) -> None:
        for ips, by_ip in (
            (svc.cluster_ips, self._cip_owners),
            (svc.external_ips, self._ext_owners),
        ):
            for ip in ips:
                owners = tuple(k for k in by_ip.get(ip, ()) if k != svc.key)
                if owners:
                    by_ip[ip] = owners
                else:
                    by_ip.pop(ip, None)

    def _drop_pod_ips(self, pod: Pod) -> None:
        for ip in pod.ips:
            pods = tuple(p for p in self._pods_by_ip.get(ip, ()) if p.key != pod.key)
            if pods:
                self._pods_by_ip[ip] = pods
            else:
                self._pods_by_ip.pop(ip, None)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "services": len(self._services),
            "endpointslices": len(self._slices),
            "pods": len(self._pods),
            "namespaces": len(self._namespaces),
            "serviceimports": len(self._imports),
        }

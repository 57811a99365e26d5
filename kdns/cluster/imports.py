"""The multicluster part of the index: ServiceImports and the endpoints of the clusterset.

Multi-Cluster Services (KEP-1645) name a service of the clusterset by a ServiceImport; its
endpoints are EndpointSlices labelled `multicluster.kubernetes.io/service-name` (the import) and
`multicluster.kubernetes.io/source-cluster` (the cluster they come from). `IndexBuilder` feeds
this state and publishes its maps with every snapshot; kdns.cluster.multicluster answers from
them. Kept apart from the Service maps: the same name may be a Service and a ServiceImport,
answered in different zones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kdns.cluster.cowmap import CowMap
from kdns.cluster.objects import Key, Port, ServiceImport, Slice


@dataclass(frozen=True, slots=True)
class ClusterAddress:
    """One ready endpoint address of a ServiceImport, with the cluster it is in."""

    cluster: str
    ip: str
    hostname: str
    pod_name: str
    ports: tuple[Port, ...]


def _addresses(slices: Iterable[Slice]) -> tuple[ClusterAddress, ...]:
    out: list[ClusterAddress] = []
    for sl in sorted(slices, key=lambda s: s.name):
        for ep in sl.endpoints:
            if ep.ready:  # a ServiceImport has no publishNotReadyAddresses
                out.append(ClusterAddress(sl.cluster, ep.ip, ep.hostname, ep.pod_name, ep.ports))
    return tuple(out)


class ImportsBuilder:
    """Mutable ServiceImport state; `changed` tells the index builder to publish."""

    def __init__(self) -> None:
        self._imports: CowMap[Key, ServiceImport] = CowMap()
        self._slices: dict[Key, Slice] = {}  # by slice key, only those backing an import
        self._slices_of: dict[Key, set[Key]] = {}  # import key -> slice keys
        self._addresses: CowMap[Key, tuple[ClusterAddress, ...]] = CowMap()
        self._dirty: set[Key] = set()
        self.changed = False

    def upsert_import(self, obj: ServiceImport) -> None:
        if self._imports.get(obj.key) != obj:
            self._imports[obj.key] = obj
            self.changed = True

    def delete_import(self, key: Key) -> None:
        if self._imports.pop(key, None) is not None:
            self.changed = True

    def upsert_slice(self, sl: Slice) -> None:
        """Every EndpointSlice goes through here: one that stopped backing an import leaves."""
        old = self._slices.get(sl.key)
        if old == sl:
            return
        if old is not None:
            self._unlink(old)
        if sl.mc_service:
            self._slices[sl.key] = sl
            self._slices_of.setdefault(sl.import_key, set()).add(sl.key)
            self._dirty.add(sl.import_key)
            self.changed = True

    def delete_slice(self, key: Key) -> None:
        old = self._slices.get(key)
        if old is not None:
            self._unlink(old)

    def _unlink(self, sl: Slice) -> None:
        del self._slices[sl.key]
        members = self._slices_of.get(sl.import_key)
        if members is not None:
            members.discard(sl.key)
            if not members:
                del self._slices_of[sl.import_key]
        self._dirty.add(sl.import_key)
        self.changed = True

    def import_keys(self) -> list[Key]:
        return list(self._imports)

    def freeze(
        self,
    ) -> tuple[Mapping[Key, ServiceImport], Mapping[Key, tuple[ClusterAddress, ...]]]:
        """The maps a snapshot publishes, with the addresses of changed imports rebuilt."""
        for key in self._dirty:
            members = self._slices_of.get(key, ())
            addrs = _addresses(self._slices[k] for k in members)
            if addrs:
                self._addresses[key] = addrs
            else:
                self._addresses.pop(key, None)
        self._dirty.clear()
        self.changed = False
        return self._imports.freeze(), self._addresses.freeze()

    def __len__(self) -> int:
        return len(self._imports)

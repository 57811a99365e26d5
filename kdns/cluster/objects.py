"""Slim projections of Kubernetes objects: only what DNS answers need.

API objects arrive as plain dicts (JSON from the API server or YAML from a snapshot). Keeping
small frozen records instead of whole objects is what keeps memory flat at cluster scale
(CoreDNS's `object/` package does the same).
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from kdns.dns.interning import shared

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Multi-Cluster Services API (KEP-1645): EndpointSlices that back a ServiceImport.
MC_SERVICE_NAME_LABEL = "multicluster.kubernetes.io/service-name"
MC_SOURCE_CLUSTER_LABEL = "multicluster.kubernetes.io/source-cluster"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class Port:
    """A service or slice port. A cluster has a few distinct ones (80/tcp, 53/udp, ...) on
    thousands of objects: each is kept once, also across snapshot compaction."""

    name: str  # lower-case; "" for an unnamed port
    port: int
    protocol: str  # lower-case: tcp, udp, sctp

    def __reduce__(self) -> tuple[Any, ...]:
        return (_port, (self.name, self.port, self.protocol))


# Ports and sets of ports, each kept once (see interning.shared).
_PORTS: dict[Port, Port] = {}
_PORT_SETS: dict[tuple[Port, ...], tuple[Port, ...]] = {}


def _port(name: str, port: int, protocol: str) -> Port:
    return shared(_PORTS, Port(name, port, protocol))


def _reduce_sharing_ports(obj: Any) -> tuple[Any, ...]:
    """How a Service or Slice is pickled (snapshot compaction): rebuilt with its ports kept
    once across objects, as parsing made them."""
    return (_rebuilt, (type(obj), tuple(getattr(obj, f.name) for f in fields(obj))))


_PORTS_AT: dict[type[Any], int] = {}  # where each class has its `ports` field


def _rebuilt(cls: type[Any], values: tuple[Any, ...]) -> Any:
    at = _PORTS_AT.get(cls)
    if at is None:
        at = _PORTS_AT[cls] = [f.name for f in fields(cls)].index("ports")
    return cls(*values[:at], shared(_PORT_SETS, values[at]), *values[at + 1 :])


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]  # empty for headless and ExternalName services
    headless: bool
    external_name: str
    ports: tuple[Port, ...]
    publish_not_ready: bool
    labels: tuple[tuple[str, str], ...]
    # What k8s_external serves: spec.externalIPs then status.loadBalancer.ingress IPs, and the
    # ingress hostnames (cloud load balancers that have a name rather than an address).
    external_ips: tuple[str, ...] = ()
    external_hosts: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_sharing_ports(self)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address of an EndpointSlice endpoint, with all that answers need of its slice.

    An endpoint with several addresses becomes one record per address (as CoreDNS's
    EndpointAddress). The same record is kept in its Slice, published among the service's
    addresses, and listed as an owner of its IP for PTRs: one object per address is what keeps
    the index small at 100k endpoints. Build them with `endpoints()`, which shares the slice's
    ports and service key among its records. Every field is part of equality, so a slice
    update that moves an endpoint to another zone or flips its readiness is a change (the
    service is re-versioned) and one that changes nothing DNS reads is not.
    """

    ip: str
    hostname: str
    pod_name: str  # targetRef name when it is a Pod and under 64 characters
    ready: bool
    zone: str  # the topology zone it runs in (lower-case): `zonal` names select by it
    ports: tuple[Port, ...]  # its slice's ports
    service_key: Key  # (namespace, service label value) of its slice

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickled (snapshot compaction pickles each slice apart) with its zone interned
        # again and its ports shared, so the thousands of endpoints of a zone keep sharing
        # one string and those of every slice one set of ports.
        return (
            _endpoint,
            (
                self.ip,
                self.hostname,
                self.pod_name,
                self.ready,
                self.zone,
                self.ports,
                self.service_key,
            ),
        )


@dataclass(frozen=True, slots=True)
class Slice:
    namespace: str
    name: str
    service: str
    address_type: str
    endpoints: tuple[Endpoint, ...]  # one per address, in the object's order (`endpoints()`)
    ports: tuple[Port, ...]
    trigger_time: float | None
    mc_service: str = ""  # the ServiceImport it backs (multicluster label), "" if none
    cluster: str = ""  # lower-case id of the cluster it comes from (multicluster label)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def service_key(self) -> Key:
        return (self.namespace, self.service)

    @property
    def import_key(self) -> Key:
        return (self.namespace, self.mc_service)

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_sharing_ports(self)


@dataclass(frozen=True, slots=True)
class ServiceImport:
    """A multicluster.x-k8s.io ServiceImport: a service of the clusterset."""

    namespace: str
    name: str
    headless: bool  # spec.type Headless (else ClusterSetIP)
    ips: tuple[str, ...]
    ports: tuple[Port, ...]
    labels: tuple[tuple[str, str], ...]

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    ips: tuple[str, ...]
    terminating: bool

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: tuple[tuple[str, str], ...]


class ObjectError(ValueError):
    """An object that cannot be turned into DNS data (missing name, bad address, ...)."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise ObjectError("object has no metadata.name")
    return meta


def _labels(meta: Mapping[str, Any], key: str = "labels") -> tuple[tuple[str, str], ...]:
    raw = meta.get(key) or {}
    if not isinstance(raw, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def _ports(raw: Any) -> tuple[Port, ...]:
    out = []
    for p in raw or ():
        if not isinstance(p, Mapping):
            continue
        port = p.get("port")
        if not isinstance(port, int):
            continue
        out.append(
            _port(str(p.get("name") or "").lower(), port, str(p.get("protocol") or "TCP").lower())
        )
    return shared(_PORT_SETS, tuple(out))


def _ip(text: Any) -> str | None:
    try:
        ip = ipaddress.ip_address(str(text))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is an IPv4 address (A record), as Go reads it
    return str(ip)


def _external(spec: Mapping[str, Any], status: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """External addresses in CoreDNS's order (spec.externalIPs, then each ingress's ip, else
    its hostname), each once; hostnames lower-case and fully qualified."""
    ips: list[str] = []
    hosts: list[str] = []
    raw = spec.get("externalIPs")
    for text in raw if isinstance(raw, list) else ():
        ip = _ip(text)
        if ip and ip not in ips:
            ips.append(ip)
    lb = status.get("loadBalancer") if isinstance(status, Mapping) else None
    ingress = lb.get("ingress") if isinstance(lb, Mapping) else None
    for entry in ingress if isinstance(ingress, list) else ():
        if not isinstance(entry, Mapping):
            continue
        if entry.get("ip"):
            ip = _ip(entry["ip"])
            if ip and ip not in ips:
                ips.append(ip)
        elif isinstance(entry.get("hostname"), str) and entry["hostname"].strip("."):
            host = entry["hostname"].lower().rstrip(".") + "."
            if host not in hosts:
                hosts.append(host)
    return tuple(ips), tuple(hosts)


def service_from(obj: Mapping[str, Any]) -> Service:
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    external_ips, external_hosts = _external(spec, obj.get("status"))
    stype = str(spec.get("type") or "ClusterIP")
    raw_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    headless = any(str(ip) == "None" for ip in raw_ips) or (stype != "ExternalName" and not raw_ips)
    ips = tuple(ip for ip in (_ip(x) for x in raw_ips if str(x) != "None") if ip)
    return Service(
        namespace=str(meta.get("namespace") or "default"),
        name=meta["name"],
        type=stype,
        cluster_ips=() if stype == "ExternalName" else ips,
        headless=headless and stype != "ExternalName",
        external_name=str(spec.get("externalName") or "") if stype == "ExternalName" else "",
        ports=_ports(spec.get("ports")),
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
        labels=_labels(meta),
        external_ips=external_ips,
        external_hosts=external_hosts,
    )


def _trigger_time(meta: Mapping[str, Any]) -> float | None:
    ann = meta.get("annotations") or {}
    raw = ann.get(TRIGGER_TIME_ANNOTATION) if isinstance(ann, Mapping) else None
    if not isinstance(raw, str):
        return None
    try:
        # RFC 3339 with optional nanoseconds: keep microseconds, which is all a float holds.
        text = raw.replace("Z", "+00:00")
        if "." in text:
            head, rest = text.split(".", 1)
            frac = "".join(ch for ch in rest if ch.isdigit())
            tz = rest[len(frac) :]
            text = f"{head}.{frac[:6]}{tz}"
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def endpoints(
    service_key: Key,
    ports: tuple[Port, ...],
    ips: Iterable[str],
    hostname: str = "",
    pod_name: str = "",
    ready: bool = True,
    zone: str = "",
) -> list[Endpoint]:
    """The records of one endpoint of a slice: one per address. Zone names repeat across
    thousands of endpoints and each parsed one is a fresh string, so they are interned;
    hostnames are mostly empty and pod names unique."""
    zone = sys.intern(zone)
    return [Endpoint(ip, hostname, pod_name, ready, zone, ports, service_key) for ip in ips]


def _endpoint(
    ip: str,
    hostname: str,
    pod_name: str,
    ready: bool,
    zone: str,
    ports: tuple[Port, ...],
    service_key: Key,
) -> Endpoint:
    return Endpoint(
        ip, hostname, pod_name, ready, sys.intern(zone), shared(_PORT_SETS, ports), service_key
    )


def slice_from(obj: Mapping[str, Any]) -> Slice:
    meta = _meta(obj)
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping):
        labels = {}
    namespace = str(meta.get("namespace") or "default")
    service = str(labels.get(SERVICE_NAME_LABEL) or "")
    key = (namespace, service)  # one tuple shared by the slice's records
    ports = _ports(obj.get("ports"))
    records: list[Endpoint] = []
    for ep in obj.get("endpoints") or ():
        if not isinstance(ep, Mapping):
            continue
        cond = ep.get("conditions") or {}
        ready = cond.get("ready") if isinstance(cond, Mapping) else None
        ref = ep.get("targetRef") or {}
        pod_name = ""
        if isinstance(ref, Mapping) and ref.get("kind") == "Pod":
            name = str(ref.get("name") or "")
            pod_name = name if len(name) < 64 else ""
        addrs = [a for a in (_ip(x) for x in ep.get("addresses") or ()) if a]
        records += endpoints(
            key,
            ports,
            addrs,
            hostname=str(ep.get("hostname") or "").lower(),
            pod_name=pod_name.lower(),
            ready=ready is None or bool(ready),  # unset means ready (API contract)
            zone=str(ep.get("zone") or "").lower(),
        )
    return Slice(
        namespace=namespace,
        name=meta["name"],
        service=service,
        address_type=str(obj.get("addressType") or "IPv4"),
        endpoints=tuple(records),
        ports=ports,
        trigger_time=_trigger_time(meta),
        mc_service=str(labels.get(MC_SERVICE_NAME_LABEL) or ""),
        cluster=str(labels.get(MC_SOURCE_CLUSTER_LABEL) or "").lower(),
    )


def service_import_from(obj: Mapping[str, Any]) -> ServiceImport:
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise ObjectError("spec is not a mapping")
    ips = tuple(ip for ip in (_ip(x) for x in spec.get("ips") or ()) if ip)
    return ServiceImport(
        namespace=str(meta.get("namespace") or "default"),
        name=meta["name"],
        headless=str(spec.get("type") or "") == "Headless",
        ips=ips,
        ports=_ports(spec.get("ports")),
        labels=_labels(meta),
    )


def pod_from(obj: Mapping[str, Any]) -> Pod:
    meta = _meta(obj)
    status = obj.get("status") or {}
    ips: list[str] = []
    for entry in status.get("podIPs") or ():
        ip = _ip(entry.get("ip")) if isinstance(entry, Mapping) else None
        if ip and ip not in ips:
            ips.append(ip)
    single = _ip(status.get("podIP")) if status.get("podIP") else None
    if single and single not in ips:
        ips.insert(0, single)
    return Pod(
        namespace=str(meta.get("namespace") or "default"),
        name=meta["name"],
        ips=tuple(ips),
        terminating=bool(meta.get("deletionTimestamp")),
    )


def namespace_from(obj: Mapping[str, Any]) -> Namespace:
    meta = _meta(obj)
    return Namespace(name=meta["name"], labels=_labels(meta))

"""What a snapshot's objects may hold: the fields of the kinds kdns reads, and their checks.

A misspelled field (`externalname:`, `clusterIp:`) or a kind kdns does not know (`Servce`) would
otherwise make a Service vanish without a word. `check` walks the parts of an object that kdns
reads and says, for each problem, where it is (a path of keys and list indexes from the object)
and whether the object can still be served. It is pure: the snapshot loader turns paths into
file lines. Field tables follow the Kubernetes API (core/v1, discovery/v1) and the Multi-Cluster
Services API (multicluster.x-k8s.io/v1alpha1 ServiceImport).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kdns.cluster import objects

Path = tuple[str | int, ...]
# Parsed YAML and JSON are dicts and lists: exact type checks, which cost far less than ABCs,
# and every object's problems are named (`Service ns/name: ...`) only once some are found.


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


READ_KINDS = ("Namespace", "Service", "EndpointSlice", "Pod", "Endpoints", "ServiceImport")

# Built-in kinds a `kubectl get ... -o yaml` dump holds next to the ones kdns reads: skipped
# quietly. Any other kind is named, since it is most often a typo of one kdns reads.
OTHER_KINDS = _names(
    "ConfigMap Secret ServiceAccount Deployment StatefulSet DaemonSet ReplicaSet Job CronJob "
    "ReplicationController Node PersistentVolume PersistentVolumeClaim Ingress IngressClass "
    "NetworkPolicy Role RoleBinding ClusterRole ClusterRoleBinding HorizontalPodAutoscaler "
    "PodDisruptionBudget LimitRange ResourceQuota Event Lease PriorityClass StorageClass "
    "CustomResourceDefinition MutatingWebhookConfiguration ValidatingWebhookConfiguration "
    "ControllerRevision CSIDriver CSINode VolumeAttachment RuntimeClass APIService",
)

_META = _names(
    "name namespace labels annotations uid resourceVersion generation creationTimestamp "
    "deletionTimestamp deletionGracePeriodSeconds managedFields ownerReferences finalizers "
    "generateName selfLink",
)
_OBJECT = _names("apiVersion kind metadata spec status")
_SERVICE_SPEC = _names(
    "clusterIP clusterIPs externalName type ports selector ipFamilies ipFamilyPolicy "
    "sessionAffinity sessionAffinityConfig externalIPs externalTrafficPolicy "
    "internalTrafficPolicy healthCheckNodePort loadBalancerIP loadBalancerSourceRanges "
    "loadBalancerClass allocateLoadBalancerNodePorts publishNotReadyAddresses "
    "trafficDistribution",
)
_SERVICE_PORT = _names("name port protocol targetPort nodePort appProtocol")
_IMPORT_SPEC = _names("ips type ports sessionAffinity sessionAffinityConfig")
_IMPORT_TYPES = ("ClusterSetIP", "Headless")
_SERVICE_STATUS = _names("loadBalancer conditions")
_LOAD_BALANCER = _names("ingress")
_INGRESS = _names("ip hostname ipMode ports")
_PORT = _names("name port protocol appProtocol")
_SLICE = _names("apiVersion kind metadata addressType endpoints ports")
_ENDPOINT = _names(
    "addresses conditions hostname nodeName targetRef zone hints deprecatedTopology",
)
_CONDITIONS = _names("ready serving terminating")
_REF = _names("kind name namespace uid apiVersion resourceVersion fieldPath")
_ENDPOINTS = _names("apiVersion kind metadata subsets")
_SUBSET = _names("addresses notReadyAddresses ports")
_ADDRESS = _names("ip hostname nodeName targetRef")
_POD_STATUS = _names(
    "phase conditions message reason nominatedNodeName hostIP hostIPs podIP podIPs startTime "
    "initContainerStatuses containerStatuses ephemeralContainerStatuses qosClass resize "
    "resourceClaimStatuses observedGeneration",
)


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path  # from the object: ("spec", "clusterIP"), ("endpoints", 0, "addresses", 1)
    message: str
    error: bool  # True: the object cannot be served as written


def kind_problem(kind: str) -> str | None:
    """Why a kind kdns does not read is worth a word, or None to skip it quietly."""
    if kind in OTHER_KINDS or kind.endswith("List"):
        return None
    close = _close(kind, READ_KINDS)
    hint = f" (did you mean {close}?)" if close else ""
    return f"kind {kind!r} is not one kdns reads{hint}: object skipped"


def _close(word: str, known: frozenset[str] | tuple[str, ...]) -> str | None:
    for k in known:
        if k.lower() == word.lower():
            return k
    found = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.75)
    return found[0] if found else None


def _fields(raw: Any, known: frozenset[str], where: Path) -> list[Problem]:
    # Called for every endpoint of every slice: the common case is one set difference.
    unknown = raw.keys() - known if isinstance(raw, dict) else None
    if not unknown:
        return []
    out = []
    for key in sorted(unknown, key=str):
        close = _close(str(key), known)
        hint = f" (did you mean {close}?)" if close else ""
        at = (*where, key)
        out.append(Problem(at, f"unknown field {_dotted(at)}{hint}", False))
    return out


def _items(raw: Any) -> Iterator[tuple[int, Any]]:
    if isinstance(raw, list):
        yield from enumerate(raw)


def _is_ip(raw: Any) -> bool:
    # The common case, a valid IPv4 address, matched several times faster than ipaddress
    # parses it; anything else gets the word of the parser the projections use.
    if isinstance(raw, str) and _IPV4.fullmatch(raw):
        return True
    return objects._ip(raw) is not None


def label_of(kind: str, obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name")
    ns = meta.get("namespace") or ("" if kind == "Namespace" else "default")
    if not isinstance(name, str):
        return kind
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def check(kind: str, obj: Mapping[str, Any]) -> list[Problem]:
    """Every problem of an object of a kind kdns reads (`READ_KINDS`)."""
    top = {"EndpointSlice": _SLICE, "Endpoints": _ENDPOINTS}.get(kind, _OBJECT)
    out = _fields(obj, top, ())
    out.extend(_fields(obj.get("metadata"), _META, ("metadata",)))
    if kind == "Service":
        out.extend(_service(obj))
    elif kind == "EndpointSlice":
        out.extend(_slice(obj))
    elif kind == "Endpoints":
        out.extend(_endpoints(obj))
    elif kind == "Pod":
        out.extend(_pod(obj))
    elif kind == "ServiceImport":
        out.extend(_service_import(obj))
    if not out:
        return out
    label = label_of(kind, obj)
    return [Problem(p.path, f"{label}: {p.message}", p.error) for p in out]


def _service(obj: Mapping[str, Any]) -> Iterator[Problem]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    yield from _fields(spec, _SERVICE_SPEC, ("spec",))
    for i, port in _items(spec.get("ports")):
        yield from _fields(port, _SERVICE_PORT, ("spec", "ports", i))
    external = spec.get("type") == "ExternalName"
    if external and not spec.get("externalName"):
        yield Problem(("spec",), "type ExternalName needs spec.externalName", True)
    ips: list[tuple[Path, Any]] = [(("spec", "clusterIP"), spec.get("clusterIP"))]
    ips += [(("spec", "clusterIPs", i), ip) for i, ip in _items(spec.get("clusterIPs"))]
    for where, ip in ips:
        if ip is None or ip in ("", "None") or _is_ip(ip):
            continue
        # An ExternalName Service answers with its name and never reads a cluster IP.
        yield Problem(where, f"{_dotted(where)} {ip!r} is not an IP address", not external)
    yield from _external_addresses(spec, obj.get("status"))


def _external_addresses(spec: dict[str, Any], status: Any) -> Iterator[Problem]:
    """spec.externalIPs and status.loadBalancer.ingress, which k8s_external serves: a bad
    address is skipped (the Service still serves its cluster names)."""
    ips: list[tuple[Path, Any]] = [
        (("spec", "externalIPs", i), ip) for i, ip in _items(spec.get("externalIPs"))
    ]
    if isinstance(status, dict):
        yield from _fields(status, _SERVICE_STATUS, ("status",))
        lb = status.get("loadBalancer")
        yield from _fields(lb, _LOAD_BALANCER, ("status", "loadBalancer"))
        ingress = lb.get("ingress") if isinstance(lb, dict) else None
        for i, entry in _items(ingress):
            where: Path = ("status", "loadBalancer", "ingress", i)
            yield from _fields(entry, _INGRESS, where)
            if isinstance(entry, dict) and entry.get("ip"):
                ips.append(((*where, "ip"), entry["ip"]))
    for where, ip in ips:
        if not _is_ip(ip):
            yield Problem(where, f"{_dotted(where)} {ip!r} is not an IP address: skipped", False)


def _service_import(obj: Mapping[str, Any]) -> Iterator[Problem]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        yield Problem((), "a ServiceImport needs a spec", True)
        return
    yield from _fields(spec, _IMPORT_SPEC, ("spec",))
    for i, port in _items(spec.get("ports")):
        yield from _fields(port, _PORT, ("spec", "ports", i))
    if spec.get("type") not in _IMPORT_TYPES:
        got = spec.get("type")
        yield Problem(
            ("spec", "type"), f"spec.type must be ClusterSetIP or Headless, got {got!r}", True
        )
    for i, ip in _items(spec.get("ips")):
        if not _is_ip(ip):
            at: Path = ("spec", "ips", i)
            yield Problem(at, f"{_dotted(at)} {ip!r} is not an IP address", True)


def _dotted(where: Path) -> str:
    return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in where).replace(".[", "[")


def _slice(obj: Mapping[str, Any]) -> Iterator[Problem]:
    for i, port in _items(obj.get("ports")):
        yield from _fields(port, _PORT, ("ports", i))
    for i, ep in _items(obj.get("endpoints")):
        where: Path = ("endpoints", i)
        if not isinstance(ep, dict):
            continue
        yield from _fields(ep, _ENDPOINT, where)
        yield from _fields(ep.get("conditions"), _CONDITIONS, (*where, "conditions"))
        yield from _fields(ep.get("targetRef"), _REF, (*where, "targetRef"))
        for j, ip in _items(ep.get("addresses")):
            if not _is_ip(ip):
                at = (*where, "addresses", j)
                yield Problem(at, f"{_dotted(at)} {ip!r} is not an IP address: skipped", False)


def _endpoints(obj: Mapping[str, Any]) -> Iterator[Problem]:
    for i, subset in _items(obj.get("subsets")):
        yield from _fields(subset, _SUBSET, ("subsets", i))
        if not isinstance(subset, dict):
            continue
        for j, port in _items(subset.get("ports")):
            yield from _fields(port, _PORT, ("subsets", i, "ports", j))
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in _items(subset.get(key)):
                where: Path = ("subsets", i, key, j)
                yield from _fields(addr, _ADDRESS, where)
                yield from _fields(
                    addr.get("targetRef") if isinstance(addr, dict) else None,
                    _REF,
                    (*where, "targetRef"),
                )
                ip = addr.get("ip") if isinstance(addr, dict) else None
                if not _is_ip(ip):
                    at = (*where, "ip")
                    yield Problem(at, f"{_dotted(at)} {ip!r} is not an IP address: skipped", False)


def _pod(obj: Mapping[str, Any]) -> Iterator[Problem]:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    yield from _fields(status, _POD_STATUS, ("status",))
    ips: list[tuple[Path, Any]] = []
    if status.get("podIP"):
        ips.append((("status", "podIP"), status["podIP"]))
    for i, entry in _items(status.get("podIPs")):
        if isinstance(entry, dict):
            yield from _fields(entry, frozenset({"ip"}), ("status", "podIPs", i))
            ips.append((("status", "podIPs", i, "ip"), entry.get("ip")))
    for where, ip in ips:
        if not _is_ip(ip):
            yield Problem(where, f"{_dotted(where)} {ip!r} is not an IP address: skipped", False)

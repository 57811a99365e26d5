"""Where `kdns diagnose --pod` finds the pod: a manifest file (a Pod, or the pod template of a
workload) or a live pod read through the Kubernetes API.

A manifest is checked as the API server would check the fields the kubelet's DNS configurer
reads (`dnsPolicy`, `hostNetwork`, `dnsConfig`): what the API server rejects is a `PodError`,
one line for the user.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from kdns.cluster import poddns

# Where each kind keeps its pod spec.
SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
KINDS_TEXT = "a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob"


class PodError(ValueError):
    """The pod cannot be read or the API server would reject it (message is one line)."""


@dataclass(frozen=True, slots=True)
class FoundPod:
    pod: poddns.PodDNS
    origin: str  # "Deployment shop/web in deploy.yaml"
    spec_path: tuple[str, ...]  # where a dnsConfig change goes in the manifest
    dns_config: Mapping[str, Any] | None  # the manifest's dnsConfig as written


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PodError(f"{what} must be a mapping")
    return value


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PodError(f"{what} must be a list of strings")
    return tuple(value)


def _dns_config(raw: object) -> poddns.DNSConfig:
    cfg = _mapping(raw, "dnsConfig")
    nameservers = _strings(cfg.get("nameservers"), "dnsConfig.nameservers")
    for ns in nameservers:
        try:
            ipaddress.ip_address(ns)
        except ValueError:
            raise PodError(f"dnsConfig.nameservers: {ns!r} must be a valid IP address") from None
    if len(nameservers) > poddns.MAX_NAMESERVERS:
        raise PodError(f"dnsConfig.nameservers: at most {poddns.MAX_NAMESERVERS} are allowed")
    searches = _strings(cfg.get("searches"), "dnsConfig.searches")
    if len(searches) > poddns.MAX_SEARCH_PATHS:
        raise PodError(f"dnsConfig.searches: at most {poddns.MAX_SEARCH_PATHS} are allowed")
    options: list[poddns.Option] = []
    raw_options = cfg.get("options") or []
    if not isinstance(raw_options, list):
        raise PodError("dnsConfig.options must be a list of {name, value}")
    for i, opt in enumerate(raw_options):
        where = f"dnsConfig.options[{i}]"
        entry = _mapping(opt, where)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise PodError(f"{where}.name is required")
        value = entry.get("value")
        if value is not None and not isinstance(value, str):
            raise PodError(
                f"{where}.value must be a string: quote it (value: {str(value)!r}), "
                "the API server rejects a number"
            )
        options.append((name, value))
    return poddns.DNSConfig(nameservers, searches, tuple(options))


def pod_from_spec(spec: Mapping[str, Any], namespace: str) -> poddns.PodDNS:
    policy = spec.get("dnsPolicy") or poddns.CLUSTER_FIRST
    if policy not in poddns.POLICIES:
        raise PodError(f"dnsPolicy {policy!r} is not one of {', '.join(poddns.POLICIES)}")
    host_network = spec.get("hostNetwork", False)
    if not isinstance(host_network, bool):
        raise PodError("hostNetwork must be true or false")
    raw = spec.get("dnsConfig")
    dns_config = None if raw is None else _dns_config(raw)
    if policy == poddns.NONE:
        if dns_config is None:
            raise PodError("dnsPolicy None needs a dnsConfig (the API server rejects the pod)")
        if not dns_config.nameservers:
            raise PodError("dnsPolicy None needs at least one dnsConfig.nameservers entry")
    return poddns.PodDNS(namespace, policy, host_network, dns_config)


def found_in(obj: Mapping[str, Any], default_namespace: str | None, where: str) -> FoundPod:
    """The pod (template) of one object, whose kind is in SPEC_PATHS."""
    kind = str(obj.get("kind"))
    path = SPEC_PATHS[kind]
    spec: Any = obj
    for step in path:
        spec = _mapping(spec.get(step), ".".join(path[: path.index(step) + 1]))
    meta = _mapping(obj.get("metadata"), "metadata")
    namespace = meta.get("namespace") or default_namespace or "default"
    if default_namespace and meta.get("namespace") and meta["namespace"] != default_namespace:
        raise PodError(
            f"the {kind} is in namespace {meta['namespace']!r}, not {default_namespace!r}"
        )
    pod = pod_from_spec(spec, str(namespace))
    origin = f"{kind} {namespace}/{meta.get('name', '?')}{where}"
    return FoundPod(pod, origin, path, spec.get("dnsConfig"))


def _objects(docs: list[Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for doc in docs:
        if isinstance(doc, Mapping):
            if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                out.extend(_objects(doc["items"]))
            elif doc.get("kind") in SPEC_PATHS:
                out.append(doc)
    return out


def load_manifest(path: str, default_namespace: str | None) -> FoundPod:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PodError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PodError(f"{path}: not a text file") from None
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise PodError(f"{path}{line}: {problem}") from None
    objects = _objects(docs)
    if not objects:
        raise PodError(f"{path}: no pod template in the file (expected {KINDS_TEXT})")
    more = f", the first of {len(objects)}" if len(objects) > 1 else ""
    try:
        return found_in(objects[0], default_namespace, f" in {path}{more}")
    except PodError as exc:
        raise PodError(f"{path}: {exc}") from None


def is_live_reference(text: str) -> bool:
    """NAMESPACE/NAME (a live pod) rather than a file: one slash, no file of that name, and
    not a name a manifest would have."""
    namespace, sep, name = text.partition("/")
    return (
        bool(sep and namespace and name)
        and "/" not in name
        and not os.path.exists(text)
        and not name.endswith((".yaml", ".yml", ".json"))
        and namespace not in (".", "..")
    )


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """The `kubernetes` directive's connection settings, from the command line."""

    endpoint: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    tls: tuple[str, str, str] | None = None


def default_access(kubeconfig: str | None, context: str | None, endpoint: str | None) -> ApiAccess:
    """Flags first; else $KUBECONFIG or ~/.kube/config as kubectl reads them; else in-cluster."""
    if kubeconfig is None and endpoint is None:
        env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        home = Path.home() / ".kube" / "config"
        kubeconfig = env or (str(home) if home.is_file() else None)
    return ApiAccess(endpoint, kubeconfig, context)


async def read_live(reference: str, access: ApiAccess, timeout: float) -> FoundPod:
    """GET the pod through the API with the kubernetes plugin's client set-up."""
    from kubernetes_asyncio import client as k8s_client
    from kubernetes_asyncio.config import ConfigException

    from kdns.sources.kubeapi import make_api_client, status_message

    namespace, _, name = reference.partition("/")
    try:
        api = await make_api_client(access)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        where = access.kubeconfig or access.endpoint or "the pod's service account (in-cluster)"
        raise PodError(
            f"cannot use {where} to reach the Kubernetes API ({exc}); "
            "give --kubeconfig or --endpoint"
        ) from None
    async with api:
        try:
            async with asyncio.timeout(timeout):
                # The raw JSON: the client's models reject what they do not expect (an owner
                # reference without a uid) and drop fields they do not know.
                resp: Any = await k8s_client.CoreV1Api(api).read_namespaced_pod(
                    name, namespace, _preload_content=False
                )
                body = await resp.read()
                resp.release()
        except k8s_client.ApiException as exc:
            raise PodError(f"pod {reference}: {exc.reason}") from None
        except TimeoutError:
            raise PodError(f"pod {reference}: no answer from the API in {timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PodError(f"pod {reference}: cannot reach the Kubernetes API: {exc}") from None
    if not 200 <= resp.status < 300:
        why = status_message(body) or str(resp.reason)
        raise PodError(f"pod {reference}: HTTP {resp.status}: {why}")
    try:
        obj = json.loads(body)
    except ValueError:
        raise PodError(f"pod {reference}: the API's reply is not JSON") from None
    if not isinstance(obj, dict):
        raise PodError(f"pod {reference}: the API's reply is not a Pod")
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    found = found_in({**obj, "kind": "Pod"}, None, " (live)")
    if owners:
        # A running pod's dnsConfig cannot change: the fix goes in its owner's pod template.
        owner = owners[0]
        origin = f"{found.origin}, owned by {owner.get('kind')} {owner.get('name')}"
        path = SPEC_PATHS.get(str(owner.get("kind")), ("spec", "template", "spec"))
        return FoundPod(found.pod, origin, path, found.dns_config)
    return found

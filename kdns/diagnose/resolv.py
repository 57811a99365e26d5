"""Which resolv.conf `kdns diagnose` walks: a real file (`--resolv-conf`), the one the kubelet
writes for a pod (`--pod FILE|NAMESPACE/NAME`), or for a ClusterFirst pod in a namespace
(`--namespace`, the default). The last two go through the kubelet's rules (kdns.cluster.poddns).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kdns.cluster import poddns, search
from kdns.diagnose import pods


class InputError(ValueError):
    """Bad input: one line for the user, exit status 1."""


@dataclass(frozen=True, slots=True)
class Chosen:
    conf: search.ResolvConf  # what the resolver library reads
    origin: str  # where it comes from, for people
    nameservers: tuple[str, ...]  # the file as written
    searches: tuple[str, ...]
    options: tuple[str, ...]
    policy: str | None = None  # the dnsPolicy applied, for a pod
    warnings: tuple[str, ...] = ()  # the kubelet's DNSConfigForming events
    pod: pods.FoundPod | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "nameservers": list(self.nameservers),
            "search": list(self.searches),
            "options": dict(poddns.split_option(o) for o in self.options),
        }

    def text(self) -> list[str]:
        written = poddns.PodResolvConf(self.nameservers, self.searches, self.options, "")
        policy = f", dnsPolicy {self.policy}" if self.policy else ""
        lines = [f"resolv.conf ({self.origin}{policy}):"]
        lines += [f"    {line}" for line in written.text().splitlines()] or ["    (empty)"]
        lines += [f"  kubelet warning: {w}" for w in self.warnings]
        return lines


def _cluster_dns(text: str) -> tuple[str, ...]:
    ips = tuple(ip.strip() for ip in text.split(",") if ip.strip())
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InputError(f"--cluster-dns: {ip!r} is not an IP address") from None
    return ips


def _node(path: str) -> poddns.NodeResolvConf | None:
    if path == "":
        return None  # the kubelet's --resolv-conf="": no node file
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"--node-resolv-conf {path}: {why}") from None
    try:
        return poddns.parse_node_resolv_conf(text)
    except poddns.NodeResolvConfError as exc:
        raise InputError(f"{path}: {exc} (the kubelet cannot start pods)") from None


def _from_kubelet(
    pod: poddns.PodDNS, kubelet: poddns.Kubelet, origin: str, found: pods.FoundPod | None
) -> Chosen:
    written = poddns.pod_resolv_conf(pod, kubelet)
    try:
        conf = search.parse_resolv_conf(written.text(), "the pod's resolv.conf")
    except search.ResolvConfError as exc:
        raise InputError(str(exc)) from None
    return Chosen(
        conf,
        origin,
        written.nameservers,
        written.searches,
        written.options,
        written.policy,
        written.warnings,
        found,
    )


def _find_pod(args: argparse.Namespace) -> pods.FoundPod:
    try:
        if pods.is_live_reference(args.pod):
            access = pods.default_access(args.kubeconfig, args.context, args.endpoint)
            return asyncio.run(pods.read_live(args.pod, access, max(args.timeout, 5.0)))
        return pods.load_manifest(args.pod, args.namespace)
    except pods.PodError as exc:
        raise InputError(str(exc)) from None


def choose(args: argparse.Namespace, zone: str) -> Chosen:
    """The resolv.conf for the arguments; `zone` is the cluster domain to model."""
    if args.resolv_conf:
        if args.pod or args.namespace or args.node_resolv_conf is not None or args.node_search:
            raise InputError(
                "--resolv-conf reads a real file: leave out --pod, --namespace and the node's"
                " settings"
            )
        try:
            with open(args.resolv_conf) as f:
                conf = search.parse_resolv_conf(f.read(), args.resolv_conf)
        except OSError as exc:
            raise InputError(f"{args.resolv_conf}: {exc.strerror or exc}") from None
        except search.ResolvConfError as exc:
            raise InputError(str(exc)) from None
        searches = tuple(d.rstrip(".") or "." for d in conf.search)
        chosen = Chosen(conf, args.resolv_conf, conf.nameservers, searches, conf.options)
    elif args.pod:
        if args.node_search:
            raise InputError("--pod reads the node's search domains from --node-resolv-conf")
        found = _find_pod(args)
        node = _node("/etc/resolv.conf" if args.node_resolv_conf is None else args.node_resolv_conf)
        kubelet = poddns.Kubelet(_cluster_dns(args.cluster_dns), zone.rstrip("."), node)
        chosen = _from_kubelet(found.pod, kubelet, found.origin, found)
    else:
        if args.node_resolv_conf is not None:
            raise InputError("--node-resolv-conf goes with --pod (with --namespace: --node-search)")
        namespace = args.namespace or "default"
        node = poddns.NodeResolvConf(searches=tuple(args.node_search))
        kubelet = poddns.Kubelet(_cluster_dns(args.cluster_dns), zone.rstrip("."), node)
        pod = poddns.PodDNS(namespace)
        chosen = _from_kubelet(pod, kubelet, f"a pod in namespace {namespace}", None)
    if args.ndots is not None:
        chosen = replace(chosen, conf=replace(chosen.conf, ndots=args.ndots))
    return chosen

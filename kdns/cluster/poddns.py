"""The resolv.conf the kubelet writes for a pod, from its spec and the node's settings.

Pure model (no I/O) of the kubelet's DNS configurer (kubernetes/kubernetes,
pkg/kubelet/network/dns/dns.go, `GetPodDNS`):

- the policy: `ClusterFirst` (the default), `ClusterFirstWithHostNet`, `Default`, `None`; a
  `ClusterFirst` pod with `hostNetwork: true` gets `Default`, and so does any cluster policy
  when the kubelet has no cluster DNS IP;
- cluster policies: the cluster DNS IPs, the search list `<ns>.svc.<domain> svc.<domain>
  <domain>` followed by the node's search domains (duplicates dropped), `options ndots:5`;
- `Default`: the node's resolv.conf as the kubelet reads it (`parse_node_resolv_conf`), or
  `nameserver 127.0.0.1` and `search .` when the kubelet's `--resolv-conf` is empty;
- `None`: nothing but the pod's `dnsConfig`;
- `dnsConfig` on top of any policy: nameservers and searches appended without duplicates,
  options merged by name with the pod's value winning;
- the limits applied last: 3 nameservers; 32 search domains, none longer than 253 characters,
  2,048 characters in all (domains cut from the end). The kubelet writes what fits and records a
  `DNSConfigForming` warning event; `warnings` holds the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

CLUSTER_FIRST = "ClusterFirst"
CLUSTER_FIRST_WITH_HOST_NET = "ClusterFirstWithHostNet"
DEFAULT = "Default"
NONE = "None"
POLICIES = (CLUSTER_FIRST, CLUSTER_FIRST_WITH_HOST_NET, DEFAULT, NONE)

MAX_NAMESERVERS = 3  # validation.MaxDNSNameservers
MAX_SEARCH_PATHS = 32  # validation.MaxDNSSearchPaths (ExpandedDNSConfig, GA in 1.28)
MAX_SEARCH_CHARS = 2048  # validation.MaxDNSSearchListChars
MAX_SEARCH_DOMAIN = 253  # DNS1123SubdomainMaxLength: longer ones make glibc 2.28 abort()
DEFAULT_OPTIONS = ("ndots:5",)

Option = tuple[str, str | None]  # (name, value); None: an option without a value


class NodeResolvConfError(ValueError):
    """The node's resolv.conf cannot be used: the kubelet fails the pod's sandbox."""


@dataclass(frozen=True, slots=True)
class NodeResolvConf:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_node_resolv_conf(text: str) -> NodeResolvConf:
    """The kubelet's `parseResolvConf`: nameservers accumulate, the last `search` and `options`
    lines win, a trailing dot on a search domain is dropped; `domain` lines and everything else
    are ignored, and `#` starts a comment only at the start of a line."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.split("\n"):
        trimmed = line.strip()
        if trimmed.startswith("#"):
            continue
        fields = trimmed.split()
        if not fields:
            continue
        if fields[0] == "nameserver":
            if len(fields) < 2:
                raise NodeResolvConfError("a nameserver line without an address")
            nameservers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return NodeResolvConf(tuple(nameservers), tuple(searches), tuple(options))


@dataclass(frozen=True, slots=True)
class DNSConfig:
    """A pod's `spec.dnsConfig`."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, slots=True)
class PodDNS:
    """The parts of a pod the kubelet's DNS configurer reads."""

    namespace: str
    policy: str = CLUSTER_FIRST
    host_network: bool = False
    dns_config: DNSConfig | None = None


@dataclass(frozen=True, slots=True)
class Kubelet:
    """The kubelet's `--cluster-dns`, `--cluster-domain` and `--resolv-conf` (None: empty)."""

    cluster_dns: tuple[str, ...] = ("10.96.0.10",)
    cluster_domain: str = "cluster.local"
    node: NodeResolvConf | None = field(default_factory=NodeResolvConf)
    node_ipv6: bool = False  # only for an empty --resolv-conf: ::1 instead of 127.0.0.1


@dataclass(frozen=True, slots=True)
class PodResolvConf:
    nameservers: tuple[str, ...]
    searches: tuple[str, ...]
    options: tuple[str, ...]  # as written: `name` or `name:value`
    policy: str  # the policy applied (ClusterFirst with hostNetwork applies Default)
    warnings: tuple[str, ...] = ()

    def text(self) -> str:
        """The file as the container runtime writes it from the kubelet's DNSConfig."""
        lines = [f"nameserver {ns}" for ns in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)

    @property
    def option_values(self) -> dict[str, str | None]:
        return dict(split_option(o) for o in self.options)


def split_option(text: str) -> Option:
    name, sep, value = text.partition(":")
    return (name, value) if sep and value else (name, None)


def _omit_duplicates(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def applied_policy(pod: PodDNS) -> str:
    """`getPodDNSType`: which policy the pod gets; an unknown one is ClusterFirst."""
    if pod.policy == NONE:
        return NONE
    if pod.policy == CLUSTER_FIRST_WITH_HOST_NET:
        return CLUSTER_FIRST_WITH_HOST_NET
    if pod.policy == DEFAULT or (pod.policy == CLUSTER_FIRST and pod.host_network):
        return DEFAULT
    return CLUSTER_FIRST


def cluster_searches(namespace: str, domain: str, node_searches: Sequence[str]) -> list[str]:
    """`generateSearchesForDNSClusterFirst`."""
    if not domain:
        return list(node_searches)
    cluster = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
    return _omit_duplicates([*cluster, *node_searches])


def merge_options(existing: Sequence[str], pod_options: Sequence[Option]) -> list[str]:
    """`mergeDNSOptions`: one entry per name, the pod's value winning. The kubelet builds the
    list from a Go map, so its order varies; here existing names keep their place."""
    merged: dict[str, str] = {}
    for text in existing:
        name, _, value = text.partition(":")
        merged[name] = value
    for name, pod_value in pod_options:
        merged[name] = pod_value or ""
    return [f"{name}:{value}" if value else name for name, value in merged.items()]


def fit_searches(searches: Sequence[str]) -> tuple[list[str], bool]:
    """`formDNSSearchFitsLimits`: the list that fits, and whether anything was left out."""
    exceeded = len(searches) > MAX_SEARCH_PATHS
    fitted = list(searches[:MAX_SEARCH_PATHS])
    kept = [s for s in fitted if len(s) <= MAX_SEARCH_DOMAIN]
    exceeded = exceeded or len(kept) != len(fitted)
    length = len(" ".join(kept))
    if length > MAX_SEARCH_CHARS:
        exceeded = True
        while kept and length > MAX_SEARCH_CHARS:
            length -= len(kept.pop()) + 1
    return kept, exceeded


def fit_nameservers(nameservers: Sequence[str]) -> tuple[list[str], bool]:
    """`formDNSNameserversFitsLimits`."""
    return list(nameservers[:MAX_NAMESERVERS]), len(nameservers) > MAX_NAMESERVERS


def pod_resolv_conf(pod: PodDNS, kubelet: Kubelet) -> PodResolvConf:
    """`GetPodDNS`: what the kubelet hands the runtime for the pod's /etc/resolv.conf."""
    node = kubelet.node or NodeResolvConf()
    servers, searches, options = list(node.nameservers), list(node.searches), list(node.options)
    warnings: list[str] = []
    policy = applied_policy(pod)
    if policy == NONE:
        servers, searches, options = [], [], []
    elif policy in (CLUSTER_FIRST, CLUSTER_FIRST_WITH_HOST_NET):
        if kubelet.cluster_dns:
            servers = list(kubelet.cluster_dns)
            searches = cluster_searches(pod.namespace, kubelet.cluster_domain, searches)
            options = list(DEFAULT_OPTIONS)
        else:
            warnings.append(
                "kubelet does not have ClusterDNS IP configured and cannot create Pod using "
                f'"{policy}" policy. Falling back to "Default" policy.'
            )
            policy = DEFAULT
    if policy == DEFAULT and kubelet.node is None:
        # An empty --resolv-conf: the local machine's nameserver, and no search.
        servers = ["::1" if kubelet.node_ipv6 else "127.0.0.1"]
        searches = ["."]
    if pod.dns_config is not None:
        servers = _omit_duplicates([*servers, *pod.dns_config.nameservers])
        searches = _omit_duplicates([*searches, *pod.dns_config.searches])
        options = merge_options(options, pod.dns_config.options)
    servers, cut = fit_nameservers(servers)
    if cut:
        warnings.append(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
            f"nameserver line is: {' '.join(servers)}"
        )
    searches, cut = fit_searches(searches)
    if cut:
        warnings.append(
            "Search Line limits were exceeded, some search paths have been omitted, the "
            f"applied search line is: {' '.join(searches)}"
        )
    return PodResolvConf(tuple(servers), tuple(searches), tuple(options), policy, tuple(warnings))

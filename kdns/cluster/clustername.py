"""A cluster zone's query name, parsed once: its zone and the labels left of it.

CoreDNS's kubernetes plugin reads every name through one `parseRequest`; here `parse` is that
one step. The answer (kdns.cluster.answer), what a re-served answer depends on (`dependencies`)
and the search-list classifier (kdns.cluster.search.expansion) all read the same `ClusterName`,
so no step matches the zone or splits the name again.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass

from kdns.cluster.imports import ClusterAddress
from kdns.cluster.objects import Endpoint, Key
from kdns.dns import names
from kdns.dns.frozen import fast_init

REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")


@fast_init
@dataclass(frozen=True, slots=True)
class ClusterName:
    qname: str  # as asked, letter case kept
    name: str  # lower-case, absolute
    zone: str  # lower-case zone matched
    zone_text: str  # the zone as written in the question (case kept), absolute
    labels: tuple[str, ...]  # lower-case labels left of the zone; () at the apex

    @property
    def reverse(self) -> bool:
        return self.zone.endswith(REVERSE_ZONES)


def parse(qname: str, name: str, zone: str) -> ClusterName:
    """`qname` (as asked) and `name` (its lower-case absolute form), in `zone`."""
    if zone == ".":
        zone_text = "."
        rel = name[:-1] if name.endswith(".") else name
    else:
        zone_text = qname[len(qname) - len(zone) :]
        if not zone_text.endswith("."):
            zone_text += "."
        rel = name[: len(name) - len(zone)].rstrip(".")
    labels = tuple(names.split(rel)) if rel else ()
    return ClusterName(qname, name, zone, zone_text, labels)


def parse_text(qname: str, zones: tuple[str, ...]) -> ClusterName | None:
    """`parse` for a name given as text only (tools, CNAME chasing); None outside `zones`."""
    name = names.normalize(qname)
    zone = names.longest_zone(name, zones)
    return None if zone is None else parse(qname, name, zone)


def dependencies(labels: tuple[str, ...], pods: str) -> tuple[Key, ...] | None:
    """What a `<...>.<ns>.svc|pod.<zone>` answer depends on: its service and its namespace.

    Everything the answer reads for such a name is the namespace's existence and filters, the
    service object and its endpoints; the index versions exactly those keys, so an answer kept
    as bytes stays valid while other objects change. `pods` is the plugin's pods mode.
    """
    if len(labels) < 2 or labels[-1] not in ("svc", "pod"):
        return None
    # Interned: the fast path and the cache keep these keys with every stored reply, and each
    # query's parse made a new string of the same few namespaces.
    namespace = sys.intern(labels[-2])
    if labels[-1] == "pod":
        return (("", namespace),) if pods != "verified" else None
    if len(labels) == 2:
        return (("", namespace),)
    return ((namespace, labels[-3]), ("", namespace))


def endpoint_label(addr: Endpoint | ClusterAddress, pod_names: bool) -> str:
    """The name of an endpoint: hostname, else pod name (endpoint_pod_names), else dashed IP."""
    if addr.hostname:
        return addr.hostname
    if pod_names and addr.pod_name:
        return addr.pod_name
    if ":" not in addr.ip:
        return addr.ip.replace(".", "-")
    # A label may not start or end with "-": `2001:db8::` is `2001-db8--0` (CoreDNS #7431) and,
    # by the same rule, `::1` is `0--1`. Both still read back as the address (pod names).
    dashed = addr.ip.replace(":", "-")
    if dashed.startswith("-"):
        dashed = "0" + dashed
    return dashed + "0" if dashed.endswith("-") else dashed


def pod_label_ip(label: str) -> str | None:
    """The address a `<dashed-ip>.<ns>.pod` label stands for (a-b-c-d, or IPv6 with dashes
    for colons), or None when it is not one."""
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped  # Go's net.ParseIP reads ::ffff:a.b.c.d as IPv4 (an A)
    return str(parsed)

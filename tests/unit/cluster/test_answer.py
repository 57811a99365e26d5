"""Table-driven tests of cluster-name answers (kdns.cluster.answer), CoreDNS `test.Case` style.

Each table is one small cluster (built from plain API objects through the real projections and
IndexBuilder), one set of options, and rows of question -> expected rcode, answer, authority and
(where it matters) additional section. Records are written in presentation form,
`owner ttl TYPE rdata`; the SOA serial is shown as SERIAL. Answer sets are compared without
order unless a row asks for order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from kdns.cluster import objects
from kdns.cluster import selector as selectors
from kdns.cluster.answer import lookup
from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.options import Options, PodsMode
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN, REFUSED, Reply
from kdns.dns.records import RR

Z = "cluster.local."


def soa(zone: str = Z, ttl: int = 5, minimum: int = 5) -> str:
    return f"{zone} {ttl} SOA ns.dns.{zone} hostmaster.{zone} SERIAL 7200 1800 86400 {minimum}"


SOA = soa()
SERVER_IP = "10.244.0.53"  # the kdns pod: an endpoint of kube-system/kube-dns


# -- fixture builders: plain Kubernetes objects -------------------------------------------


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def svc(
    namespace: str,
    name: str,
    ips: Iterable[str] = (),
    ports: Iterable[tuple[str, int, str]] = (("http", 80, "TCP"),),
    *,
    headless: bool = False,
    external: str | None = None,
    labels: dict[str, str] | None = None,
    publish_not_ready: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]
    }
    if external is not None:
        spec = {"type": "ExternalName", "externalName": external}
    elif headless:
        spec.update(clusterIP="None", clusterIPs=["None"])
    else:
        ips = list(ips)
        spec.update(clusterIP=ips[0], clusterIPs=ips)
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    meta = {"name": name, "namespace": namespace, "labels": labels or {}}
    return {"kind": "Service", "metadata": meta, "spec": spec}


def ep(
    ip: str, hostname: str = "", pod: str = "", ready: bool | None = True, *more: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip, *more]}
    if ready is not None:
        out["conditions"] = {"ready": ready}
    if hostname:
        out["hostname"] = hostname
    if pod:
        out["targetRef"] = {"kind": "Pod", "name": pod, "namespace": "x"}
    return out


def eps(
    namespace: str,
    service: str,
    endpoints: list[dict[str, Any]],
    ports: Iterable[tuple[str, int, str]] | None = (("http", 80, "TCP"),),
    suffix: str = "a",
    family: str = "IPv4",
) -> dict[str, Any]:
    meta = {
        "name": f"{service}-{suffix}",
        "namespace": namespace,
        "labels": {objects.SERVICE_NAME_LABEL: service},
    }
    out: dict[str, Any] = {
        "kind": "EndpointSlice",
        "metadata": meta,
        "addressType": family,
        "endpoints": endpoints,
    }
    if ports is not None:
        out["ports"] = [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]
    return out


def pod(namespace: str, name: str, *ips: str, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {
        "kind": "Pod",
        "metadata": meta,
        "status": {"podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]},
    }


_FROM = {
    "Namespace": objects.namespace_from,
    "Service": objects.service_from,
    "EndpointSlice": objects.slice_from,
    "Pod": objects.pod_from,
}


def build(items: Iterable[dict[str, Any]], builder: IndexBuilder | None = None) -> ClusterIndex:
    builder = builder or IndexBuilder(clock=lambda: 1000.0)
    for item in items:
        builder.upsert(_FROM[item["kind"]](item))  # type: ignore[operator]
    for kind in ("Namespace", "Service", "EndpointSlice", "Pod"):
        builder.mark_synced(kind)
    return builder.publish()


# -- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    qname: str
    qtype: str
    rcode: int = NOERROR
    answer: tuple[str, ...] = ()
    authority: tuple[str, ...] | None = None  # None: SOA when the answer is empty, else none
    extra: tuple[str, ...] | None = None  # None: not checked
    ordered: bool = False

    def __str__(self) -> str:
        return f"{self.qname} {self.qtype}"


def text(r: RR) -> str:
    data = rr.rdata_text(r)
    if r.rtype == rr.SOA:
        parts = data.split()
        parts[2] = "SERIAL"
        data = " ".join(parts)
    return f"{r.name} {r.ttl} {rr.type_name(r.rtype)} {data}"


def check(index: ClusterIndex, opts: Options, case: Case) -> None:
    reply: Reply = lookup(index, opts, case.qname, rr.type_from_text(case.qtype)).reply
    where = f"{case}"
    assert reply.rcode == case.rcode, f"{where}: rcode {reply.rcode}, want {case.rcode}"
    got = [text(r) for r in reply.answer]
    if case.ordered:
        assert got == list(case.answer), f"{where}: answer {got}"
    else:
        assert sorted(got) == sorted(case.answer), f"{where}: answer {got}"
    authority = case.authority
    if authority is None:
        authority = () if case.answer else (soa(_zone_of(case.qname)),)
    assert [text(r) for r in reply.authority] == list(authority), f"{where}: authority"
    if case.extra is not None:
        extra = sorted(text(r) for r in reply.additional)
        assert extra == sorted(case.extra), f"{where}: additional {extra}"
    if reply.rcode in (NOERROR, NXDOMAIN):
        assert reply.aa


def _zone_of(qname: str) -> str:
    low = qname.lower()
    for zone in ("in-addr.arpa.", "ip6.arpa.", "example.org."):
        if low.endswith(zone):
            return zone
    return Z


def run(index: ClusterIndex, opts: Options, cases: Iterable[Case]) -> None:
    failures = []
    for case in cases:
        try:
            check(index, opts, case)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


BASE = Options(zones=(Z, "in-addr.arpa.", "ip6.arpa."), pods=PodsMode.INSECURE, ttl=5)


# -- the cluster ---------------------------------------------------------------------------

LONG_POD = "statefulset-with-a-very-long-name-that-goes-past-the-limit-0123456789"  # 70 chars

CLUSTER = [
    ns("default"),
    ns("testns"),
    ns("kube-system"),
    ns("team-a", team="a"),
    ns("team-b", team="b"),
    svc("default", "kubernetes", ["10.96.0.1"], [("https", 443, "TCP")]),
    svc("kube-system", "kube-dns", ["10.96.0.10"], [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]),
    eps(
        "kube-system",
        "kube-dns",
        [ep(SERVER_IP), ep("10.244.0.54")],
        [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
    ),
    svc("testns", "svc1", ["10.0.0.1"]),
    eps("testns", "svc1", [ep("172.0.0.1", "ep1a")]),
    svc(
        "testns",
        "multi",
        ["10.0.0.20"],
        [("http", 80, "TCP"), ("https", 443, "TCP"), ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
    ),
    svc("testns", "unnamed", ["10.0.0.21"], [("", 8080, "TCP")]),
    svc("testns", "noports", ["10.0.0.22"], []),
    svc("testns", "dual", ["10.0.0.30", "fd00::30"]),
    svc("testns", "svc-empty", ["10.0.0.40"]),
    svc("testns", "hdls", headless=True),
    eps("testns", "hdls", [ep("172.0.1.1", "h1"), ep("172.0.1.2")], suffix="a"),
    eps(
        "testns",
        "hdls",
        [ep("172.0.1.2"), ep("172.0.1.3", ready=False), ep("172.0.1.4", ready=None)],
        suffix="b",
    ),
    eps(
        "testns",
        "hdls",
        [ep("fd00::1:1"), ep("2001:db8::"), ep("::5")],
        suffix="c",
        family="IPv6",
    ),
    svc("testns", "hdls-pnr", headless=True, publish_not_ready=True),
    eps("testns", "hdls-pnr", [ep("172.0.3.1", ready=False)]),
    svc("testns", "hdls-nr", headless=True),
    eps("testns", "hdls-nr", [ep("172.0.3.2", ready=False)]),
    svc("testns", "hdls-pods", headless=True),
    eps("testns", "hdls-pods", [ep("172.0.2.1", pod="web-0"), ep("172.0.2.2", pod=LONG_POD)]),
    svc("testns", "hdls-noports", headless=True, ports=[]),
    eps("testns", "hdls-noports", [ep("172.0.4.1")], ports=None),
    svc("testns", "hdls-empty", headless=True),
    svc("testns", "ext", external="ext.example.test"),
    svc("testns", "ext-dot", external="Ext.Example.Test."),
    svc("testns", "ext-ip", external="192.0.2.77"),
    svc("testns", "ext-in", external="svc1.testns.svc.cluster.local"),
    svc("testns", "ext-chain2", external="ext-in.testns.svc.cluster.local."),
    svc("testns", "ext-loop-a", external="ext-loop-b.testns.svc.cluster.local"),
    svc("testns", "ext-loop-b", external="ext-loop-a.testns.svc.cluster.local"),
    svc("testns", "ext-self", external="ext-self.testns.svc.cluster.local"),
    svc("testns", "ext-missing", external="nothere.testns.svc.cluster.local"),
    *[
        svc("testns", f"ext-c{i}", external=f"ext-c{i + 1}.testns.svc.cluster.local")
        for i in range(11)
    ],
    svc("testns", "ext-c11", external="svc1.testns.svc.cluster.local"),
    svc("testns", "labeled", ["10.0.0.50"], labels={"app": "web"}),
    svc("team-a", "svc-a", ["10.0.1.1"]),
    svc("team-a", "h-a", headless=True),
    eps("team-a", "h-a", [ep("172.0.5.1", "x")]),
    svc("team-b", "svc-b", ["10.0.2.1"]),
    svc("team-b", "h-b", headless=True),
    eps("team-b", "h-b", [ep("172.0.6.1", "y")]),
    pod("testns", "web-0", "10.244.2.1"),
    pod("testns", "going", "10.244.2.2", terminating=True),
    pod("testns", "dual-pod", "10.244.2.3", "fd00::2:3"),
]
INDEX = build(CLUSTER)


def test_cluster_ip_services() -> None:
    run(
        INDEX,
        BASE,
        [
            Case(
                "svc1.testns.svc.cluster.local.", "A", answer=(f"svc1.testns.svc.{Z} 5 A 10.0.0.1",)
            ),
            Case("svc1.testns.svc.cluster.local.", "AAAA"),
            Case(
                "dual.testns.svc.cluster.local.",
                "A",
                answer=(f"dual.testns.svc.{Z} 5 A 10.0.0.30",),
            ),
            Case(
                "dual.testns.svc.cluster.local.",
                "AAAA",
                answer=(f"dual.testns.svc.{Z} 5 AAAA fd00::30",),
            ),
            # no endpoints: still answered (spec 2.3.1) unless `ignore empty_service`
            Case(
                "svc-empty.testns.svc.cluster.local.",
                "A",
                answer=(f"svc-empty.testns.svc.{Z} 5 A 10.0.0.40",),
            ),
            Case(
                "noports.testns.svc.cluster.local.",
                "A",
                answer=(f"noports.testns.svc.{Z} 5 A 10.0.0.22",),
            ),
            Case("noports.testns.svc.cluster.local.", "SRV"),
            Case("nothere.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("svc1.nons.svc.cluster.local.", "A", NXDOMAIN),
        ],
    )


def test_srv_records() -> None:
    run(
        INDEX,
        BASE,
        [
            Case(
                "_http._tcp.multi.testns.svc.cluster.local.",
                "SRV",
                answer=(f"_http._tcp.multi.testns.svc.{Z} 5 SRV 0 100 80 multi.testns.svc.{Z}",),
                extra=(f"multi.testns.svc.{Z} 5 A 10.0.0.20",),
            ),
            Case(
                "_dns._udp.multi.testns.svc.cluster.local.",
                "SRV",
                answer=(f"_dns._udp.multi.testns.svc.{Z} 5 SRV 0 100 53 multi.testns.svc.{Z}",),
            ),
            Case("_dns._tcp.multi.testns.svc.cluster.local.", "SRV", NXDOMAIN),  # proto counts
            Case("_https._udp.multi.testns.svc.cluster.local.", "SRV", NXDOMAIN),
            # underscores are optional (CoreDNS strips one if present)
            Case(
                "https.tcp.multi.testns.svc.cluster.local.",
                "SRV",
                answer=(f"https.tcp.multi.testns.svc.{Z} 5 SRV 0 100 443 multi.testns.svc.{Z}",),
            ),
            # bare name: one SRV per port; weight = 100 / number of ports; one glue record
            Case(
                "multi.testns.svc.cluster.local.",
                "SRV",
                answer=tuple(
                    f"multi.testns.svc.{Z} 5 SRV 0 25 {p} multi.testns.svc.{Z}"
                    for p in (80, 443, 53)
                ),
                extra=(f"multi.testns.svc.{Z} 5 A 10.0.0.20",),
            ),
            # dual stack: one SRV (same target and port), weight 50, glue for both families
            Case(
                "_http._tcp.dual.testns.svc.cluster.local.",
                "SRV",
                answer=(f"_http._tcp.dual.testns.svc.{Z} 5 SRV 0 50 80 dual.testns.svc.{Z}",),
                extra=(
                    f"dual.testns.svc.{Z} 5 A 10.0.0.30",
                    f"dual.testns.svc.{Z} 5 AAAA fd00::30",
                ),
            ),
            # unnamed ports have no _port._proto SRV (spec 2.3.2), but appear on the bare name
            Case("_http._tcp.unnamed.testns.svc.cluster.local.", "SRV", NXDOMAIN),
            Case(
                "unnamed.testns.svc.cluster.local.",
                "SRV",
                answer=(f"unnamed.testns.svc.{Z} 5 SRV 0 100 8080 unnamed.testns.svc.{Z}",),
            ),
            # `_port` without `_proto` reads as an endpoint name: none is called that
            Case("_http.svc1.testns.svc.cluster.local.", "SRV", NXDOMAIN),
            Case("_http.svc1.testns.svc.cluster.local.", "A", NXDOMAIN),
            # more than two labels left of the service
            Case("a._http._tcp.svc1.testns.svc.cluster.local.", "SRV", NXDOMAIN),
        ],
    )


def test_headless_services() -> None:
    v4 = ("172.0.1.1", "172.0.1.2", "172.0.1.4")
    run(
        INDEX,
        BASE,
        [
            # two IPv4 slices (172.0.1.2 in both: answered once), not-ready 172.0.1.3 left out,
            # readiness unset counts as ready
            Case(
                "hdls.testns.svc.cluster.local.",
                "A",
                answer=tuple(f"hdls.testns.svc.{Z} 5 A {ip}" for ip in v4),
            ),
            Case(
                "hdls.testns.svc.cluster.local.",
                "AAAA",
                answer=tuple(
                    f"hdls.testns.svc.{Z} 5 AAAA {ip}" for ip in ("fd00::1:1", "2001:db8::", "::5")
                ),
            ),
            Case(
                "h1.hdls.testns.svc.cluster.local.",
                "A",
                answer=(f"h1.hdls.testns.svc.{Z} 5 A 172.0.1.1",),
            ),
            Case("h1.hdls.testns.svc.cluster.local.", "AAAA"),
            Case(
                "172-0-1-2.hdls.testns.svc.cluster.local.",
                "A",
                answer=(f"172-0-1-2.hdls.testns.svc.{Z} 5 A 172.0.1.2",),
            ),
            # an endpoint with a hostname is named only by it
            Case("172-0-1-1.hdls.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("172-0-1-3.hdls.testns.svc.cluster.local.", "A", NXDOMAIN),  # not ready
            # IPv6 names: ':' -> '-', and a label never starts or ends with '-'
            Case(
                "fd00--1-1.hdls.testns.svc.cluster.local.",
                "AAAA",
                answer=(f"fd00--1-1.hdls.testns.svc.{Z} 5 AAAA fd00::1:1",),
            ),
            Case(
                "2001-db8--0.hdls.testns.svc.cluster.local.",
                "AAAA",
                answer=(f"2001-db8--0.hdls.testns.svc.{Z} 5 AAAA 2001:db8::",),
            ),
            Case("2001-db8--.hdls.testns.svc.cluster.local.", "AAAA", NXDOMAIN),
            Case(
                "0--5.hdls.testns.svc.cluster.local.",
                "AAAA",
                answer=(f"0--5.hdls.testns.svc.{Z} 5 AAAA ::5",),
            ),
            Case("0--5.hdls.testns.svc.cluster.local.", "A"),
            # SRV: one per (endpoint name, port), weight over every address found (7 -> 14)
            Case(
                "_http._tcp.hdls.testns.svc.cluster.local.",
                "SRV",
                answer=tuple(
                    f"_http._tcp.hdls.testns.svc.{Z} 5 SRV 0 14 80 {n}.hdls.testns.svc.{Z}"
                    for n in ("h1", "172-0-1-2", "172-0-1-4", "fd00--1-1", "2001-db8--0", "0--5")
                ),
                extra=(
                    f"h1.hdls.testns.svc.{Z} 5 A 172.0.1.1",
                    f"172-0-1-2.hdls.testns.svc.{Z} 5 A 172.0.1.2",
                    f"172-0-1-4.hdls.testns.svc.{Z} 5 A 172.0.1.4",
                    f"fd00--1-1.hdls.testns.svc.{Z} 5 AAAA fd00::1:1",
                    f"2001-db8--0.hdls.testns.svc.{Z} 5 AAAA 2001:db8::",
                    f"0--5.hdls.testns.svc.{Z} 5 AAAA ::5",
                ),
            ),
            Case(
                "_http._tcp.h1.hdls.testns.svc.cluster.local.",  # endpoint + port: too long
                "SRV",
                NXDOMAIN,
            ),
            Case(
                "h1.hdls.testns.svc.cluster.local.",
                "SRV",
                answer=(f"h1.hdls.testns.svc.{Z} 5 SRV 0 100 80 h1.hdls.testns.svc.{Z}",),
            ),
            # no ready endpoint at all: NXDOMAIN (spec 2.4.1)
            Case("hdls-empty.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("hdls-nr.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("hdls-empty.testns.svc.cluster.local.", "TXT", NXDOMAIN),
            # publishNotReadyAddresses: not-ready endpoints are published
            Case(
                "hdls-pnr.testns.svc.cluster.local.",
                "A",
                answer=(f"hdls-pnr.testns.svc.{Z} 5 A 172.0.3.1",),
            ),
            # endpoints without ports: addresses, no SRV
            Case(
                "hdls-noports.testns.svc.cluster.local.",
                "A",
                answer=(f"hdls-noports.testns.svc.{Z} 5 A 172.0.4.1",),
            ),
            Case("hdls-noports.testns.svc.cluster.local.", "SRV"),
            Case("_http._tcp.hdls-noports.testns.svc.cluster.local.", "SRV", NXDOMAIN),
            # endpoint names of a ClusterIP service (CoreDNS extension)
            Case(
                "ep1a.svc1.testns.svc.cluster.local.",
                "A",
                answer=(f"ep1a.svc1.testns.svc.{Z} 5 A 172.0.0.1",),
            ),
            Case("bogus.svc1.testns.svc.cluster.local.", "A", NXDOMAIN),
        ],
    )


def test_endpoint_pod_names() -> None:
    cases = [
        Case("web-0.hdls-pods.testns.svc.cluster.local.", "A", NXDOMAIN),
        Case(
            "172-0-2-1.hdls-pods.testns.svc.cluster.local.",
            "A",
            answer=(f"172-0-2-1.hdls-pods.testns.svc.{Z} 5 A 172.0.2.1",),
        ),
    ]
    run(INDEX, BASE, cases)
    run(
        INDEX,
        replace(BASE, endpoint_pod_names=True),
        [
            Case(
                "web-0.hdls-pods.testns.svc.cluster.local.",
                "A",
                answer=(f"web-0.hdls-pods.testns.svc.{Z} 5 A 172.0.2.1",),
            ),
            Case("172-0-2-1.hdls-pods.testns.svc.cluster.local.", "A", NXDOMAIN),
            # a pod name of 64 characters or more is not a label: the dashed IP stays
            Case(
                "172-0-2-2.hdls-pods.testns.svc.cluster.local.",
                "A",
                answer=(f"172-0-2-2.hdls-pods.testns.svc.{Z} 5 A 172.0.2.2",),
            ),
            Case(
                "2.2.0.172.in-addr.arpa.",
                "PTR",
                answer=(f"2.2.0.172.in-addr.arpa. 5 PTR 172-0-2-2.hdls-pods.testns.svc.{Z}",),
            ),
            Case(
                "1.2.0.172.in-addr.arpa.",
                "PTR",
                answer=(f"1.2.0.172.in-addr.arpa. 5 PTR web-0.hdls-pods.testns.svc.{Z}",),
            ),
            # a hostname still wins over the pod name
            Case(
                "h1.hdls.testns.svc.cluster.local.",
                "A",
                answer=(f"h1.hdls.testns.svc.{Z} 5 A 172.0.1.1",),
            ),
        ],
    )


def test_externalname() -> None:
    run(
        INDEX,
        BASE,
        [
            Case(
                "ext.testns.svc.cluster.local.",
                "CNAME",
                answer=(f"ext.testns.svc.{Z} 5 CNAME ext.example.test.",),
            ),
            # trailing dot or not, the target is the same absolute name (case kept)
            Case(
                "ext-dot.testns.svc.cluster.local.",
                "CNAME",
                answer=(f"ext-dot.testns.svc.{Z} 5 CNAME Ext.Example.Test.",),
            ),
            # an IP-looking externalName is still a CNAME (spec 2.5; CoreDNS: NXDOMAIN)
            Case(
                "ext-ip.testns.svc.cluster.local.",
                "CNAME",
                answer=(f"ext-ip.testns.svc.{Z} 5 CNAME 192.0.2.77.",),
            ),
            # A out of the zones: the CNAME, the caller resolves the target upstream
            Case(
                "ext.testns.svc.cluster.local.",
                "A",
                answer=(f"ext.testns.svc.{Z} 5 CNAME ext.example.test.",),
                authority=(),
            ),
            # a CNAME answers every type (RFC 1034 3.6.2)
            Case(
                "ext.testns.svc.cluster.local.",
                "TXT",
                answer=(f"ext.testns.svc.{Z} 5 CNAME ext.example.test.",),
            ),
            Case(
                "ext.testns.svc.cluster.local.",
                "SRV",
                answer=(f"ext.testns.svc.{Z} 5 CNAME ext.example.test.",),
            ),
            # names below an ExternalName do not exist
            Case("_http._tcp.ext.testns.svc.cluster.local.", "SRV", NXDOMAIN),
            Case("x.ext.testns.svc.cluster.local.", "CNAME", NXDOMAIN),
            Case("a.b.ext.testns.svc.cluster.local.", "A", NXDOMAIN),
        ],
    )


def test_externalname_chains() -> None:
    svc1_a = f"svc1.testns.svc.{Z} 5 A 10.0.0.1"
    hops = [
        f"ext-c{i}.testns.svc.{Z} 5 CNAME ext-c{i + 1}.testns.svc.cluster.local." for i in range(8)
    ]
    run(
        INDEX,
        BASE,
        [
            Case(
                "ext-in.testns.svc.cluster.local.",
                "A",
                answer=(f"ext-in.testns.svc.{Z} 5 CNAME svc1.testns.svc.cluster.local.", svc1_a),
                ordered=True,
            ),
            Case(
                "ext-chain2.testns.svc.cluster.local.",
                "A",
                answer=(
                    f"ext-chain2.testns.svc.{Z} 5 CNAME ext-in.testns.svc.cluster.local.",
                    f"ext-in.testns.svc.{Z} 5 CNAME svc1.testns.svc.cluster.local.",
                    svc1_a,
                ),
                ordered=True,
            ),
            # the target has no AAAA: the CNAME stays (spec 2.5), with the SOA for caching
            Case(
                "ext-in.testns.svc.cluster.local.",
                "AAAA",
                answer=(f"ext-in.testns.svc.{Z} 5 CNAME svc1.testns.svc.cluster.local.",),
                authority=(SOA,),
            ),
            # in-zone target that does not exist: dangling CNAME, NOERROR, SOA
            Case(
                "ext-missing.testns.svc.cluster.local.",
                "A",
                answer=(f"ext-missing.testns.svc.{Z} 5 CNAME nothere.testns.svc.cluster.local.",),
                authority=(SOA,),
            ),
            # a loop ends when a name repeats
            Case(
                "ext-loop-a.testns.svc.cluster.local.",
                "A",
                answer=(
                    f"ext-loop-a.testns.svc.{Z} 5 CNAME ext-loop-b.testns.svc.cluster.local.",
                    f"ext-loop-b.testns.svc.{Z} 5 CNAME ext-loop-a.testns.svc.cluster.local.",
                ),
                authority=(),
                ordered=True,
            ),
            Case(
                "ext-self.testns.svc.cluster.local.",
                "A",
                answer=(f"ext-self.testns.svc.{Z} 5 CNAME ext-self.testns.svc.cluster.local.",),
                authority=(),
            ),
            # longer than the bound: the first 8 CNAMEs, the client follows the last itself
            Case(
                "ext-c0.testns.svc.cluster.local.",
                "A",
                answer=tuple(hops),
                authority=(),
                ordered=True,
            ),
            Case(
                "ext-c4.testns.svc.cluster.local.",
                "A",
                answer=(
                    *(
                        f"ext-c{i}.testns.svc.{Z} 5 CNAME ext-c{i + 1}.testns.svc.cluster.local."
                        for i in range(4, 11)
                    ),
                    f"ext-c11.testns.svc.{Z} 5 CNAME svc1.testns.svc.cluster.local.",
                    svc1_a,
                ),
                ordered=True,
            ),
        ],
    )


def test_ignore_empty_service_and_noendpoints() -> None:
    ignore = replace(BASE, ignore_empty_service=True)
    run(
        INDEX,
        ignore,
        [
            Case("svc-empty.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("_http._tcp.svc-empty.testns.svc.cluster.local.", "SRV", NXDOMAIN),
            Case(
                "svc1.testns.svc.cluster.local.", "A", answer=(f"svc1.testns.svc.{Z} 5 A 10.0.0.1",)
            ),
            # headless and ExternalName services are never hidden by it
            Case(
                "hdls-noports.testns.svc.cluster.local.",
                "A",
                answer=(f"hdls-noports.testns.svc.{Z} 5 A 172.0.4.1",),
            ),
            Case("hdls-empty.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case(
                "ext.testns.svc.cluster.local.",
                "CNAME",
                answer=(f"ext.testns.svc.{Z} 5 CNAME ext.example.test.",),
            ),
        ],
    )
    noeps = replace(BASE, noendpoints=True)
    run(
        INDEX,
        noeps,
        [
            Case(
                "svc1.testns.svc.cluster.local.", "A", answer=(f"svc1.testns.svc.{Z} 5 A 10.0.0.1",)
            ),
            Case("ep1a.svc1.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("hdls.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("_http._tcp.hdls.testns.svc.cluster.local.", "SRV", NXDOMAIN),
            Case("h1.hdls.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("1.0.0.172.in-addr.arpa.", "PTR", NXDOMAIN),
            Case(
                "1.0.0.10.in-addr.arpa.",
                "PTR",
                answer=(f"1.0.0.10.in-addr.arpa. 5 PTR svc1.testns.svc.{Z}",),
            ),
        ],
    )
    # both: no endpoint is known, so every ClusterIP service is "empty" (as CoreDNS)
    run(
        INDEX,
        replace(noeps, ignore_empty_service=True),
        [Case("svc1.testns.svc.cluster.local.", "A", NXDOMAIN)],
    )


def test_namespace_filters_on_every_form() -> None:
    forms = [
        ("svc-{t}.team-{t}.svc.cluster.local.", "A"),
        ("_http._tcp.svc-{t}.team-{t}.svc.cluster.local.", "SRV"),
        ("h-{t}.team-{t}.svc.cluster.local.", "A"),
        ("{h}.h-{t}.team-{t}.svc.cluster.local.", "A"),
        ("team-{t}.svc.cluster.local.", "A"),
        ("10-1-2-3.team-{t}.pod.cluster.local.", "A"),
        ("team-{t}.pod.cluster.local.", "A"),
    ]
    ptrs = {
        "a": ("1.1.0.10.in-addr.arpa.", "1.5.0.172.in-addr.arpa."),
        "b": ("1.2.0.10.in-addr.arpa.", "1.6.0.172.in-addr.arpa."),
    }

    def exposed(team: str) -> list[Case]:
        h = "x" if team == "a" else "y"
        out = []
        for form, qtype in forms:
            name = form.format(t=team, h=h)
            got = lookup(INDEX, BASE, name, rr.type_from_text(qtype)).reply
            assert got.rcode == NOERROR, name  # exists without filters
            out.append(Case(name, qtype, NOERROR, tuple(text(r) for r in got.answer)))
        for ptr in ptrs[team]:
            got = lookup(INDEX, BASE, ptr, rr.PTR).reply
            assert got.answer, ptr
            out.append(Case(ptr, "PTR", NOERROR, tuple(text(r) for r in got.answer)))
        return out

    def hidden(team: str) -> list[Case]:
        return [replace(c, rcode=NXDOMAIN, answer=()) for c in exposed(team)]

    by_list = replace(BASE, namespaces=frozenset({"team-a"}))
    run(INDEX, by_list, exposed("a") + hidden("b"))
    by_label = replace(BASE, namespace_labels=selectors.parse("team=a"))
    run(INDEX, by_label, exposed("a") + hidden("b"))
    run(
        INDEX,
        replace(BASE, namespace_labels=selectors.parse("team in (a,b)")),
        exposed("a") + exposed("b"),
    )


def test_service_labels_filter() -> None:
    opts = replace(BASE, labels=selectors.parse("app=web"))
    run(
        INDEX,
        opts,
        [
            Case(
                "labeled.testns.svc.cluster.local.",
                "A",
                answer=(f"labeled.testns.svc.{Z} 5 A 10.0.0.50",),
            ),
            Case("svc1.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("ep1a.svc1.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("hdls.testns.svc.cluster.local.", "A", NXDOMAIN),
            Case("ext.testns.svc.cluster.local.", "CNAME", NXDOMAIN),
            Case("1.0.0.10.in-addr.arpa.", "PTR", NXDOMAIN),
            Case("1.0.0.172.in-addr.arpa.", "PTR", NXDOMAIN),
            Case(
                "50.0.0.10.in-addr.arpa.",
                "PTR",
                answer=(f"50.0.0.10.in-addr.arpa. 5 PTR labeled.testns.svc.{Z}",),
            ),
            Case("testns.svc.cluster.local.", "A"),  # the namespace still exists
        ],
    )


def test_pods() -> None:
    pod_cases = [
        Case(
            "10-244-2-1.testns.pod.cluster.local.",
            "A",
            answer=(f"10-244-2-1.testns.pod.{Z} 5 A 10.244.2.1",),
        ),
        Case("10-244-2-1.testns.pod.cluster.local.", "AAAA"),
        Case(
            "fd00--2-3.testns.pod.cluster.local.",
            "AAAA",
            answer=(f"fd00--2-3.testns.pod.{Z} 5 AAAA fd00::2:3",),
        ),
        Case("testns.pod.cluster.local.", "A"),
        Case("nons.pod.cluster.local.", "A", NXDOMAIN),
        Case("10-244-2-1.nons.pod.cluster.local.", "A", NXDOMAIN),
        Case("not-an-ip.testns.pod.cluster.local.", "A", NXDOMAIN),
        Case("x.10-244-2-1.testns.pod.cluster.local.", "A", NXDOMAIN),
    ]
    run(
        INDEX,
        BASE,
        [
            *pod_cases,
            # insecure: any address-shaped label, no pod needed
            Case(
                "10-9-9-9.testns.pod.cluster.local.",
                "A",
                answer=(f"10-9-9-9.testns.pod.{Z} 5 A 10.9.9.9",),
            ),
            Case(
                "10-244-2-2.testns.pod.cluster.local.",
                "A",
                answer=(f"10-244-2-2.testns.pod.{Z} 5 A 10.244.2.2",),
            ),
            Case(
                "0--1.testns.pod.cluster.local.",
                "AAAA",
                answer=(f"0--1.testns.pod.{Z} 5 AAAA ::1",),
            ),
            Case(
                "--1.testns.pod.cluster.local.", "AAAA", answer=(f"--1.testns.pod.{Z} 5 AAAA ::1",)
            ),
            Case(
                "fd00--.testns.pod.cluster.local.",
                "AAAA",
                answer=(f"fd00--.testns.pod.{Z} 5 AAAA fd00::",),
            ),
            # an IPv4-mapped label is the IPv4 address, as Go parses it
            Case(
                "--ffff-a00-1.testns.pod.cluster.local.",
                "A",
                answer=(f"--ffff-a00-1.testns.pod.{Z} 5 A 10.0.0.1",),
            ),
        ],
    )
    verified = replace(BASE, pods=PodsMode.VERIFIED)
    run(
        INDEX,
        verified,
        [
            *pod_cases,
            Case("10-9-9-9.testns.pod.cluster.local.", "A", NXDOMAIN),
            Case("10-244-2-1.default.pod.cluster.local.", "A", NXDOMAIN),  # other namespace
            Case("10-244-2-2.testns.pod.cluster.local.", "A", NXDOMAIN),  # terminating pod
            Case(
                "10-244-2-3.testns.pod.cluster.local.",
                "A",
                answer=(f"10-244-2-3.testns.pod.{Z} 5 A 10.244.2.3",),
            ),
            Case(
                "fd00-0-0-0-0-0-2-3.testns.pod.cluster.local.",
                "AAAA",
                answer=(f"fd00-0-0-0-0-0-2-3.testns.pod.{Z} 5 AAAA fd00::2:3",),
            ),
        ],
    )
    disabled = replace(BASE, pods=PodsMode.DISABLED)
    run(
        INDEX,
        disabled,
        [
            Case("10-244-2-1.testns.pod.cluster.local.", "A", NXDOMAIN),
            Case("testns.pod.cluster.local.", "A", NXDOMAIN),
            Case("pod.cluster.local.", "A"),
        ],
    )


def test_negative_answers_on_every_form() -> None:
    """NODATA for a name that exists (with any type it lacks), NXDOMAIN for one that does not."""
    existing = [
        "svc1.testns.svc.cluster.local.",
        "_http._tcp.svc1.testns.svc.cluster.local.",
        "ep1a.svc1.testns.svc.cluster.local.",
        "hdls.testns.svc.cluster.local.",
        "10-244-2-1.testns.pod.cluster.local.",
        "testns.svc.cluster.local.",
        "testns.pod.cluster.local.",
        "svc.cluster.local.",
        "pod.cluster.local.",
        "dns.cluster.local.",
        "dns-version.cluster.local.",
    ]
    missing = [
        "nothere.testns.svc.cluster.local.",
        "_x._tcp.svc1.testns.svc.cluster.local.",
        "nothere.svc1.testns.svc.cluster.local.",
        "nons.svc.cluster.local.",
        "foo.cluster.local.",
        "x.dns.cluster.local.",
        "x.dns-version.cluster.local.",
        "*.testns.svc.cluster.local.",
        "svc1.*.svc.cluster.local.",
        "*.svc1.testns.svc.cluster.local.",
        "any.testns.svc.cluster.local.",
        "a.b.c.svc1.testns.svc.cluster.local.",
    ]
    cases = []
    for qtype in ("MX", "NS", "SOA", "ANY", "HINFO", "PTR", "CNAME"):
        cases += [Case(name, qtype) for name in existing]
        cases += [Case(name, qtype, NXDOMAIN) for name in missing]
    cases += [Case(name, "TXT") for name in existing if not name.startswith("dns-version")]
    cases += [Case(name, "TXT", NXDOMAIN) for name in missing]
    cases += [Case(name, "A", NXDOMAIN) for name in missing]
    run(INDEX, BASE, cases)


def test_apex_and_name_servers() -> None:
    # the server is an endpoint of kube-dns: NS names the Service, glue is its ClusterIP
    opts = replace(BASE, server_ips=(SERVER_IP,))
    ns_name = f"kube-dns.kube-system.svc.{Z}"
    run(
        INDEX,
        opts,
        [
            Case(Z, "NS", answer=(f"{Z} 5 NS {ns_name}",), extra=(f"{ns_name} 5 A 10.96.0.10",)),
            Case(f"ns.dns.{Z}", "A", answer=(f"ns.dns.{Z} 5 A 10.96.0.10",)),
            Case(f"ns.dns.{Z}", "AAAA"),
            Case(Z, "SOA", answer=(SOA,)),
            Case(
                "Cluster.Local.",
                "SOA",
                answer=(soa("Cluster.Local."),),
            ),
            Case(Z, "A"),
            Case(Z, "TXT"),
            Case(Z, "AXFR", REFUSED, authority=()),
            Case(f"dns-version.{Z}", "TXT", answer=(f'dns-version.{Z} 28800 TXT "1.1.0"',)),
            # reverse zone apex: its own SOA and NS (named in the cluster zone, where they resolve)
            Case(
                "in-addr.arpa.",
                "SOA",
                answer=(soa("in-addr.arpa."),),
            ),
            Case("in-addr.arpa.", "NS", answer=(f"in-addr.arpa. 5 NS {ns_name}",)),
            Case("in-addr.arpa.", "A"),
        ],
    )
    # not behind a Service: ns.dns.<zone> with the server's own addresses
    alone = replace(BASE, server_ips=("10.1.1.1", "fd00::53"))
    run(
        INDEX,
        alone,
        [
            Case(
                Z,
                "NS",
                answer=(f"{Z} 5 NS ns.dns.{Z}",),
                extra=(f"ns.dns.{Z} 5 A 10.1.1.1", f"ns.dns.{Z} 5 AAAA fd00::53"),
            ),
            Case(f"ns.dns.{Z}", "A", answer=(f"ns.dns.{Z} 5 A 10.1.1.1",)),
            Case(f"ns.dns.{Z}", "AAAA", answer=(f"ns.dns.{Z} 5 AAAA fd00::53",)),
            Case(f"ns.dns.{Z}", "TXT"),
        ],
    )
    # the kube-dns Service hidden by a filter: the NS must not name it
    hidden = replace(opts, namespaces=frozenset({"testns"}))
    run(
        INDEX,
        hidden,
        [Case(Z, "NS", answer=(f"{Z} 5 NS ns.dns.{Z}",), extra=(f"ns.dns.{Z} 5 A {SERVER_IP}",))],
    )
    # endpoints not watched: same
    run(
        INDEX,
        replace(opts, noendpoints=True),
        [Case(f"ns.dns.{Z}", "A", answer=(f"ns.dns.{Z} 5 A {SERVER_IP}",))],
    )
    # no address known at all: the apex still has its NS
    run(
        INDEX,
        BASE,
        [Case(Z, "NS", answer=(f"{Z} 5 NS ns.dns.{Z}",), extra=()), Case(f"ns.dns.{Z}", "A")],
    )


def test_headless_name_server() -> None:
    index = build(
        [
            ns("kube-system"),
            svc("kube-system", "kdns", headless=True),
            eps("kube-system", "kdns", [ep("10.244.0.53", "a"), ep("10.244.0.54", "b")]),
        ]
    )
    opts = replace(BASE, server_ips=("10.244.0.53",))
    base = f"kdns.kube-system.svc.{Z}"
    run(
        index,
        opts,
        [
            Case(
                Z,
                "NS",
                answer=(f"{Z} 5 NS a.{base}", f"{Z} 5 NS b.{base}"),
                extra=(f"a.{base} 5 A 10.244.0.53", f"b.{base} 5 A 10.244.0.54"),
            )
        ],
    )


DUAL6 = "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."
TRAIL6 = "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."


def test_reverse() -> None:
    run(
        INDEX,
        BASE,
        [
            Case(
                "1.0.0.10.in-addr.arpa.",
                "PTR",
                answer=(f"1.0.0.10.in-addr.arpa. 5 PTR svc1.testns.svc.{Z}",),
            ),
            Case(
                "1.0.0.10.IN-ADDR.ARPA.",
                "PTR",
                answer=(f"1.0.0.10.IN-ADDR.ARPA. 5 PTR svc1.testns.svc.{Z}",),
            ),
            Case("1.0.0.10.in-addr.arpa.", "A"),  # the name exists
            Case("1.0.0.10.in-addr.arpa.", "TXT"),
            Case("9.9.9.10.in-addr.arpa.", "PTR", NXDOMAIN),
            Case("0.10.in-addr.arpa.", "PTR", NXDOMAIN),
            # endpoint in two slices of one service: one PTR
            Case(
                "2.1.0.172.in-addr.arpa.",
                "PTR",
                answer=(f"2.1.0.172.in-addr.arpa. 5 PTR 172-0-1-2.hdls.testns.svc.{Z}",),
            ),
            Case(
                "1.1.0.172.in-addr.arpa.",
                "PTR",
                answer=(f"1.1.0.172.in-addr.arpa. 5 PTR h1.hdls.testns.svc.{Z}",),
            ),
            Case("3.1.0.172.in-addr.arpa.", "PTR", NXDOMAIN),  # not ready
            Case(
                "1.3.0.172.in-addr.arpa.",  # publishNotReadyAddresses
                "PTR",
                answer=(f"1.3.0.172.in-addr.arpa. 5 PTR 172-0-3-1.hdls-pnr.testns.svc.{Z}",),
            ),
            Case(
                DUAL6,
                "PTR",
                answer=(f"{DUAL6} 5 PTR dual.testns.svc.{Z}",),
            ),
            Case(
                TRAIL6,
                "PTR",
                answer=(f"{TRAIL6} 5 PTR 2001-db8--0.hdls.testns.svc.{Z}",),
            ),
            # pods have no PTR records
            Case("1.2.244.10.in-addr.arpa.", "PTR", NXDOMAIN),
        ],
    )


def test_reverse_zone_from_cidr_and_several_zones() -> None:
    from kdns.dns import names

    zones = (Z, "example.org.", *names.reverse_zone_of_cidr("10.0.0.0/24"))
    opts = replace(BASE, zones=zones)
    assert zones[2] == "0.0.10.in-addr.arpa."
    run(
        INDEX,
        opts,
        [
            Case(
                "1.0.0.10.in-addr.arpa.",
                "PTR",
                answer=(f"1.0.0.10.in-addr.arpa. 5 PTR svc1.testns.svc.{Z}",),
            ),
            Case(
                "99.0.0.10.in-addr.arpa.",
                "PTR",
                NXDOMAIN,
                authority=(soa("0.0.10.in-addr.arpa."),),
            ),
            Case(
                "0.0.10.in-addr.arpa.",
                "SOA",
                answer=(soa("0.0.10.in-addr.arpa."),),
            ),
            # the second zone answers the same names, in its own zone
            Case(
                "svc1.testns.svc.example.org.",
                "A",
                answer=("svc1.testns.svc.example.org. 5 A 10.0.0.1",),
            ),
            Case(
                "_http._tcp.svc1.testns.svc.Example.Org.",
                "SRV",
                answer=(
                    "_http._tcp.svc1.testns.svc.Example.Org. 5 SRV 0 100 80 "
                    "svc1.testns.svc.Example.Org.",
                ),
                extra=("svc1.testns.svc.Example.Org. 5 A 10.0.0.1",),
            ),
            Case("nothere.testns.svc.example.org.", "A", NXDOMAIN),
            Case(
                "example.org.",
                "SOA",
                answer=(soa("example.org."),),
            ),
        ],
    )
    with pytest.raises(ValueError):
        lookup(INDEX, opts, "1.1.10.in-addr.arpa.", rr.PTR)  # outside every zone: the caller's


def test_case_is_kept_in_owner_names() -> None:
    run(
        INDEX,
        BASE,
        [
            Case(
                "SVC1.TestNS.svc.Cluster.Local.",
                "A",
                answer=("SVC1.TestNS.svc.Cluster.Local. 5 A 10.0.0.1",),
            ),
            Case(
                "_HTTP._Tcp.Hdls.TESTNS.svc.cluster.local.",
                "SRV",
                answer=tuple(
                    f"_HTTP._Tcp.Hdls.TESTNS.svc.cluster.local. 5 SRV 0 14 80 "
                    f"{n}.hdls.testns.svc.cluster.local."
                    for n in ("h1", "172-0-1-2", "172-0-1-4", "fd00--1-1", "2001-db8--0", "0--5")
                ),
            ),
            Case(
                "H1.HDLS.testns.SVC.cluster.local.",
                "A",
                answer=("H1.HDLS.testns.SVC.cluster.local. 5 A 172.0.1.1",),
            ),
            Case(
                "10-244-2-1.TESTNS.POD.cluster.local.",
                "A",
                answer=("10-244-2-1.TESTNS.POD.cluster.local. 5 A 10.244.2.1",),
            ),
            Case(
                "NotHere.testns.svc.CLUSTER.LOCAL.",
                "A",
                NXDOMAIN,
                authority=(soa("CLUSTER.LOCAL."),),
            ),
            Case(
                "EXT.testns.svc.cluster.local.",
                "CNAME",
                answer=("EXT.testns.svc.cluster.local. 5 CNAME ext.example.test.",),
            ),
            Case(
                "DNS-VERSION.cluster.local.",
                "TXT",
                answer=('DNS-VERSION.cluster.local. 28800 TXT "1.1.0"',),
            ),
        ],
    )


def test_ttl() -> None:
    zero = replace(BASE, ttl=0)
    run(
        INDEX,
        zero,
        [
            Case(
                "svc1.testns.svc.cluster.local.", "A", answer=(f"svc1.testns.svc.{Z} 0 A 10.0.0.1",)
            ),
            Case(
                "nothere.testns.svc.cluster.local.",
                "A",
                NXDOMAIN,
                authority=(soa(ttl=0, minimum=0),),
            ),
            Case(f"dns-version.{Z}", "TXT", answer=(f'dns-version.{Z} 28800 TXT "1.1.0"',)),
        ],
    )
    big = replace(BASE, ttl=3600)
    run(
        INDEX,
        big,
        [
            Case(
                "nothere.testns.svc.cluster.local.",
                "A",
                NXDOMAIN,
                authority=(soa(ttl=300, minimum=3600),),
            )
        ],
    )


def test_srv_weight_is_at_least_one() -> None:
    ips = [f"172.1.{i // 250}.{i % 250 + 1}" for i in range(150)]
    index = build(
        [ns("big"), svc("big", "h", headless=True), eps("big", "h", [ep(ip) for ip in ips])]
    )
    reply = lookup(index, BASE, "_http._tcp.h.big.svc.cluster.local.", rr.SRV).reply
    assert len(reply.answer) == 150
    assert {rr.rdata_text(r).split()[1] for r in reply.answer} == {"1"}


# -- the Kubernetes e2e DNS tests, replayed ----------------------------------------------------

E2E_NS = "dns-1234"
POD_IP = "10.244.1.5"


def e2e_objects(service3: dict[str, Any]) -> list[dict[str, Any]]:
    selected = [ep(POD_IP, "dns-querier-1", "dns-test-abc")]
    return [
        ns("default"),
        ns(E2E_NS),
        svc("default", "kubernetes", ["10.96.0.1"], [("https", 443, "TCP")]),
        svc(E2E_NS, "dns-test-service", headless=True),
        eps(E2E_NS, "dns-test-service", selected),
        svc(E2E_NS, "test-service-2", ["10.96.5.6"]),
        eps(E2E_NS, "test-service-2", [ep(POD_IP, pod="dns-test-abc")]),
        svc(E2E_NS, "dns-test-service-2", headless=True),
        eps(E2E_NS, "dns-test-service-2", [ep(POD_IP, "dns-querier-2", "dns-test-def")]),
        service3,
        svc(E2E_NS, "1kubernetes", ["10.96.7.7"], [("", 443, "TCP")]),
        pod(E2E_NS, "dns-test-abc", POD_IP),
    ]


def test_e2e_replay_list() -> None:
    n = E2E_NS
    builder = IndexBuilder(clock=lambda: 1000.0)
    index = build(e2e_objects(svc(n, "dns-test-service-3", external="foo.example.com")), builder)
    run(
        index,
        BASE,
        [
            Case(
                f"kubernetes.default.svc.{Z}",
                "A",
                answer=(f"kubernetes.default.svc.{Z} 5 A 10.96.0.1",),
            ),
            Case(f"kubernetes.default.{n}.svc.{Z}", "A", NXDOMAIN),
            Case(f"kubernetes.default.svc.{n}.svc.{Z}", "A", NXDOMAIN),
            Case(f"kubernetes.default.svc.svc.{Z}", "A", NXDOMAIN),
            Case(
                f"dns-test-service.{n}.svc.{Z}",
                "A",
                answer=(f"dns-test-service.{n}.svc.{Z} 5 A {POD_IP}",),
            ),
            Case(f"dns-test-service.{n}.{n}.svc.{Z}", "A", NXDOMAIN),
            Case(f"dns-test-service.{n}.svc.{n}.svc.{Z}", "A", NXDOMAIN),
            Case(f"dns-test-service.{n}.svc.svc.{Z}", "A", NXDOMAIN),
            Case(
                f"_http._tcp.dns-test-service.{n}.svc.{Z}",
                "SRV",
                answer=(
                    f"_http._tcp.dns-test-service.{n}.svc.{Z} 5 SRV 0 100 80 "
                    f"dns-querier-1.dns-test-service.{n}.svc.{Z}",
                ),
                extra=(f"dns-querier-1.dns-test-service.{n}.svc.{Z} 5 A {POD_IP}",),
            ),
            Case(
                f"_http._tcp.test-service-2.{n}.svc.{Z}",
                "SRV",
                answer=(
                    f"_http._tcp.test-service-2.{n}.svc.{Z} 5 SRV 0 100 80 "
                    f"test-service-2.{n}.svc.{Z}",
                ),
            ),
            Case(f"_http._tcp.dns-test-service.{n}.svc.{n}.svc.{Z}", "SRV", NXDOMAIN),
            Case(f"_http._tcp.dns-test-service.{n}.svc.svc.{Z}", "SRV", NXDOMAIN),
            Case(
                "6.5.96.10.in-addr.arpa.",
                "PTR",
                answer=(f"6.5.96.10.in-addr.arpa. 5 PTR test-service-2.{n}.svc.{Z}",),
            ),
            Case(
                f"dns-querier-2.dns-test-service-2.{n}.svc.{Z}",
                "A",
                answer=(f"dns-querier-2.dns-test-service-2.{n}.svc.{Z} 5 A {POD_IP}",),
            ),
            Case(
                f"dns-test-service-2.{n}.svc.{Z}",
                "A",
                answer=(f"dns-test-service-2.{n}.svc.{Z} 5 A {POD_IP}",),
            ),
            Case(
                f"dns-test-service-3.{n}.svc.{Z}",
                "CNAME",
                answer=(f"dns-test-service-3.{n}.svc.{Z} 5 CNAME foo.example.com.",),
            ),
            Case(
                f"1kubernetes.{n}.svc.{Z}", "A", answer=(f"1kubernetes.{n}.svc.{Z} 5 A 10.96.7.7",)
            ),
            Case(f"10-244-1-5.{n}.pod.{Z}", "A", answer=(f"10-244-1-5.{n}.pod.{Z} 5 A {POD_IP}",)),
        ],
    )
    # step 2: the externalName changes; step 3: the Service becomes a ClusterIP Service
    builder.upsert(objects.service_from(svc(n, "dns-test-service-3", external="bar.example.com")))
    index = builder.publish()
    name3 = f"dns-test-service-3.{n}.svc.{Z}"
    run(index, BASE, [Case(name3, "CNAME", answer=(f"{name3} 5 CNAME bar.example.com.",))])
    builder.upsert(objects.service_from(svc(n, "dns-test-service-3", ["10.96.8.8"])))
    index = builder.publish()
    run(
        index,
        BASE,
        [
            Case(name3, "A", answer=(f"{name3} 5 A 10.96.8.8",)),  # exactly one line: no CNAME left
            Case(name3, "CNAME"),
        ],
    )

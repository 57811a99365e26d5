"""k8s_external over real sockets (dnspython and dig): a snapshot's Services' external addresses
under example.org, as CoreDNS's k8s_external answers them, fallthrough to the next plugin, and
the live source through the fake API server showing a new external IP at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.flags
import dns.rcode
import pytest
from prometheus_client import CollectorRegistry

from kdns.config import from_text
from kdns.corefile import CorefileError
from kdns.plugins.k8s_external import ExternalPlugin
from kdns.plugins.kubernetes import KubernetesPlugin
from kdns.server import app
from tests.support import fakeapi
from tests.support.client import DIG, ask, dig, rrs
from tests.support.server import Running, running_kdns
from tests.support.upstream import fake_upstream
from tests.support.waiting import eventually

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Namespace, metadata: {name: kube-system}}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec:
    type: LoadBalancer
    clusterIP: 10.96.0.20
    externalIPs: [198.51.100.7]
    ports:
    - {name: http, port: 80, protocol: TCP}
    - {name: https, port: 443, protocol: TCP}
  status:
    loadBalancer:
      ingress:
      - {ip: 203.0.113.10, ipMode: VIP}
      - {ip: "2001:db8::10"}
- apiVersion: v1
  kind: Service
  metadata: {name: elb, namespace: shop}
  spec:
    type: LoadBalancer
    clusterIP: 10.96.0.21
    ports: [{name: http, port: 80, protocol: TCP}]
  status:
    loadBalancer:
      ingress: [{hostname: lb-123.elb.example.net}]
- apiVersion: v1
  kind: Service
  metadata: {name: plain, namespace: shop}
  spec: {clusterIP: None, externalIPs: [192.0.2.44], type: ClusterIP}
- apiVersion: v1
  kind: Service
  metadata: {name: internal, namespace: shop}
  spec:
    clusterIP: 10.96.0.30
    ports: [{name: http, port: 80, protocol: TCP}]
- apiVersion: v1
  kind: Service
  metadata: {name: db, namespace: shop}
  spec:
    clusterIP: None
    ports: [{name: postgres, port: 5432, protocol: TCP}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: db-abc
    namespace: shop
    labels: {kubernetes.io/service-name: db}
  addressType: IPv4
  ports: [{name: postgres, port: 5432, protocol: TCP}]
  endpoints:
  - {addresses: [10.1.0.5], hostname: db-0, conditions: {ready: true}}
  - {addresses: [10.1.0.6], conditions: {ready: true}}
- apiVersion: v1
  kind: Service
  metadata: {name: kube-dns, namespace: kube-system}
  spec:
    clusterIP: 10.96.0.10
    externalIPs: [192.0.2.53]
    ports: [{name: dns, port: 53, protocol: UDP}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: kube-dns-1
    namespace: kube-system
    labels: {kubernetes.io/service-name: kube-dns}
  addressType: IPv4
  ports: [{name: dns, port: 53, protocol: UDP}]
  endpoints:
  - {addresses: [127.0.0.1], conditions: {ready: true}}
"""

ZONE = "example.org."
SOA = ("example.org.", "SOA")


def corefile(upstream: int, options: str = "headless") -> str:
    return (
        ".:PORT {\n bind 127.0.0.1\n"
        f" k8s_external example.org {{\n  {options}\n }}\n"
        " kubernetes cluster.local {\n  snapshot cluster.yaml\n }\n"
        f" forward . 127.0.0.1:{upstream}\n}}\n"
    )


def soa_of(msg: Any) -> list[tuple[str, str]]:
    return [(name, rtype) for name, rtype, _ in rrs(msg, "authority")]


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT)
    return tmp_path


async def test_external_addresses_srv_and_headless(cluster: Path) -> None:
    async with fake_upstream() as up, running_kdns(corefile(up.port), cluster) as srv:
        msg = await ask(srv.port, "web.shop.example.org.", "A")
        assert msg.rcode() == dns.rcode.NOERROR and msg.flags & dns.flags.AA
        assert sorted(rrs(msg)) == [
            ("web.shop.example.org.", "A", "198.51.100.7"),
            ("web.shop.example.org.", "A", "203.0.113.10"),
        ]
        assert msg.answer[0].ttl == 5
        msg = await ask(srv.port, "web.shop.example.org.", "AAAA")
        assert rrs(msg) == [("web.shop.example.org.", "AAAA", "2001:db8::10")]

        msg = await ask(srv.port, "_https._tcp.web.shop.example.org.", "SRV")
        assert rrs(msg) == [
            ("_https._tcp.web.shop.example.org.", "SRV", "0 33 443 web.shop.example.org.")
        ]
        assert sorted(rrs(msg, "additional")) == [
            ("web.shop.example.org.", "A", "198.51.100.7"),
            ("web.shop.example.org.", "A", "203.0.113.10"),
            ("web.shop.example.org.", "AAAA", "2001:db8::10"),
        ]
        msg = await ask(srv.port, "web.shop.example.org.", "SRV")
        ports = sorted(r[2].split()[2] for r in rrs(msg))
        assert ports == ["443", "80"]

        # The README's example: a port-less Service has its A record and no SRV.
        msg = await ask(srv.port, "plain.shop.example.org.", "A")
        assert rrs(msg) == [("plain.shop.example.org.", "A", "192.0.2.44")]
        msg = await ask(srv.port, "plain.shop.example.org.", "SRV")
        assert msg.rcode() == dns.rcode.NOERROR and not msg.answer and soa_of(msg) == [SOA]

        # headless: the endpoints, by hostname or dashed address, and their SRV records.
        msg = await ask(srv.port, "db.shop.example.org.", "A")
        assert sorted(r[2] for r in rrs(msg)) == ["10.1.0.5", "10.1.0.6"]
        msg = await ask(srv.port, "db-0.db.shop.example.org.", "A")
        assert rrs(msg) == [("db-0.db.shop.example.org.", "A", "10.1.0.5")]
        msg = await ask(srv.port, "_postgres._tcp.db.shop.example.org.", "SRV")
        assert sorted(r[2] for r in rrs(msg)) == [
            "0 50 5432 10-1-0-6.db.shop.example.org.",
            "0 50 5432 db-0.db.shop.example.org.",
        ]


async def test_negative_answers_carry_the_soa(cluster: Path) -> None:
    async with fake_upstream() as up, running_kdns(corefile(up.port), cluster) as srv:
        cases = [
            ("web.shop.example.org.", "TXT", dns.rcode.NOERROR),  # exists, no such type
            ("shop.example.org.", "A", dns.rcode.NOERROR),  # a namespace: empty non-terminal
            ("internal.shop.example.org.", "A", dns.rcode.NXDOMAIN),  # no external address
            ("nope.shop.example.org.", "A", dns.rcode.NXDOMAIN),
            ("web.nons.example.org.", "A", dns.rcode.NXDOMAIN),
            ("_ftp._tcp.web.shop.example.org.", "SRV", dns.rcode.NXDOMAIN),
            ("a.b.c.web.shop.example.org.", "A", dns.rcode.NXDOMAIN),
        ]
        for qname, qtype, rcode in cases:
            msg = await ask(srv.port, qname, qtype)
            assert msg.rcode() == rcode, (qname, qtype)
            assert not msg.answer and msg.flags & dns.flags.AA
            (soa,) = msg.authority
            assert soa.name.to_text() == ZONE and soa.ttl == 5
            assert soa[0].mname.to_text() == "ns1.dns.example.org."
            assert soa[0].rname.to_text() == "hostmaster.dns.example.org."
            assert (soa[0].refresh, soa[0].retry, soa[0].expire, soa[0].minimum) == (
                7200,
                1800,
                86400,
                5,
            )


async def test_apex_soa_ns_and_name_server(cluster: Path) -> None:
    async with fake_upstream() as up, running_kdns(corefile(up.port), cluster) as srv:
        msg = await ask(srv.port, ZONE, "SOA")
        (rec,) = rrs(msg)
        assert rec[:2] == ("example.org.", "SOA")
        assert rec[2].startswith("ns1.dns.example.org. hostmaster.dns.example.org. ")
        # The server (127.0.0.1) is an endpoint of kube-dns: its external IP is the glue.
        msg = await ask(srv.port, ZONE, "NS")
        assert rrs(msg) == [("example.org.", "NS", "ns1.dns.example.org.")]
        assert rrs(msg, "additional") == [("ns1.dns.example.org.", "A", "192.0.2.53")]
        msg = await ask(srv.port, "ns1.dns.example.org.", "A")
        assert rrs(msg) == [("ns1.dns.example.org.", "A", "192.0.2.53")]
        msg = await ask(srv.port, "ns1.dns.example.org.", "AAAA")
        assert msg.rcode() == dns.rcode.NOERROR and not msg.answer
        msg = await ask(srv.port, "dns.example.org.", "A")
        assert msg.rcode() == dns.rcode.NOERROR and soa_of(msg) == [SOA]
        msg = await ask(srv.port, "ns2.dns.example.org.", "A")
        assert msg.rcode() == dns.rcode.NXDOMAIN and soa_of(msg) == [SOA]


async def test_hostname_ingress_is_a_cname_resolved_through_the_server(cluster: Path) -> None:
    async with fake_upstream() as up:
        up.add("lb-123.elb.example.net.", "A", "192.0.2.80")
        async with running_kdns(corefile(up.port), cluster) as srv:
            msg = await ask(srv.port, "elb.shop.example.org.", "A")
            assert rrs(msg) == [
                ("elb.shop.example.org.", "CNAME", "lb-123.elb.example.net."),
                ("lb-123.elb.example.net.", "A", "192.0.2.80"),
            ]
            msg = await ask(srv.port, "elb.shop.example.org.", "CNAME")
            assert rrs(msg) == [("elb.shop.example.org.", "CNAME", "lb-123.elb.example.net.")]
            msg = await ask(srv.port, "_http._tcp.elb.shop.example.org.", "SRV")
            assert rrs(msg) == [
                ("_http._tcp.elb.shop.example.org.", "SRV", "0 100 80 elb.shop.example.org.")
            ]


@pytest.mark.skipif(DIG is None, reason="dig is installed by `make test`")
async def test_dig_sees_the_answers(cluster: Path) -> None:
    async with fake_upstream() as up, running_kdns(corefile(up.port, "ttl 30"), cluster) as srv:
        out = await dig(srv.port, "+noall", "+answer", "web.shop.example.org.", "A")
        lines = sorted(" ".join(line.split()) for line in out.splitlines() if line.strip())
        assert lines == [
            "web.shop.example.org. 30 IN A 198.51.100.7",
            "web.shop.example.org. 30 IN A 203.0.113.10",
        ]
        out = await dig(srv.port, "web.shop.example.org.", "SRV")
        assert "status: NOERROR" in out and "flags: qr aa rd" in out
        # Without `headless`, a headless Service has no external name.
        out = await dig(srv.port, "db.shop.example.org.", "A")
        assert "status: NXDOMAIN" in out


async def test_fallthrough_passes_unknown_names_on(cluster: Path) -> None:
    async with fake_upstream() as up:
        up.add("nope.shop.example.org.", "A", "192.0.2.99")
        async with running_kdns(corefile(up.port, "fallthrough"), cluster) as srv:
            msg = await ask(srv.port, "nope.shop.example.org.", "A")
            assert rrs(msg) == [("nope.shop.example.org.", "A", "192.0.2.99")]
            assert up.counts[("nope.shop.example.org.", "A")] >= 1
            # Names that exist are still answered here, NODATA included.
            msg = await ask(srv.port, "web.shop.example.org.", "TXT")
            assert msg.rcode() == dns.rcode.NOERROR and soa_of(msg) == [SOA]


async def test_zone_records_lists_the_zone_soa_first(cluster: Path) -> None:
    async with fake_upstream() as up, running_kdns(corefile(up.port), cluster) as srv:
        plugin = _plugin(srv, ExternalPlugin)
        assert plugin.zone_records("example.com.") is None
        records = plugin.zone_records("example.org")
        assert records is not None
        texts = [(r.name, r.rtype) for r in records]
        assert texts[0] == ("example.org.", 6)
        owners = {r.name for r in records}
        assert {
            "web.shop.example.org.",
            "_https._tcp.web.shop.example.org.",
            "db-0.db.shop.example.org.",
            "elb.shop.example.org.",
            "ns1.dns.example.org.",
        } <= owners
        assert "internal.shop.example.org." not in owners


def _plugin(srv: Running, kind: type[Any]) -> Any:
    assert srv.app.instance is not None
    (plugin,) = (p for p in srv.app.instance.plugins if isinstance(p, kind))
    return plugin


def _web(ips: list[str]) -> dict[str, Any]:
    svc = fakeapi.service("web", "shop", cluster_ip="10.96.0.20", ports=[("http", 80, "TCP")])
    svc["spec"]["type"] = "LoadBalancer"
    if ips:
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}
    return svc


async def test_live_source_shows_a_new_external_ip_at_once(tmp_path: Path) -> None:
    async with fakeapi.FakeApiServer() as api:
        api.load([fakeapi.namespace("shop"), _web([])])
        text = (
            ".:PORT {\n bind 127.0.0.1\n k8s_external example.org\n"
            f" kubernetes cluster.local {{\n  endpoint {api.url}\n }}\n}}\n"
        )
        async with running_kdns(text, tmp_path) as srv:
            msg = await ask(srv.port, "web.shop.example.org.", "A")
            assert msg.rcode() == dns.rcode.NXDOMAIN  # pending: no address yet
            msg = await ask(srv.port, "web.shop.example.org.", "A")  # served again, fast path
            assert msg.rcode() == dns.rcode.NXDOMAIN
            k8s = _plugin(srv, KubernetesPlugin)
            before = k8s.index.generation
            api.apply(_web(["203.0.113.99"]))
            await eventually(lambda: k8s.index.generation > before)
            msg = await ask(srv.port, "web.shop.example.org.", "A")
            assert rrs(msg) == [("web.shop.example.org.", "A", "203.0.113.99")]
            # And gone again when the load balancer lets the address go.
            before = k8s.index.generation
            api.apply(_web([]))
            await eventually(lambda: k8s.index.generation > before)
            msg = await ask(srv.port, "web.shop.example.org.", "A")
            assert msg.rcode() == dns.rcode.NXDOMAIN


def test_needs_a_kubernetes_plugin() -> None:
    # As CoreDNS: the directive parses alone (its setup tests), and the server refuses to start.
    conf = from_text(".:1053 {\n k8s_external example.org\n}\n", "Corefile")
    with pytest.raises(CorefileError, match="Corefile:2: k8s_external needs a kubernetes"):
        app.build(conf, CollectorRegistry())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "k8s_external example.org {\n  ttl 3601\n }",
            "Corefile:3: ttl must be between 0 and 3600",
        ),
        ("k8s_external example.org {\n  ttl\n }", "Corefile:3: wrong number of arguments for ttl"),
        (
            "k8s_external example.org {\n  apex\n }",
            "Corefile:3: wrong number of arguments for apex",
        ),
        ("k8s_external example.org {\n  apex a..b\n }", "Corefile:3: invalid apex 'a..b'"),
        ("k8s_external example.org {\n  headless yes\n }", "Corefile:3: headless takes no"),
        ("k8s_external example.org {\n  upstream\n }", "Corefile:3: unknown property 'upstream'"),
        ("k8s_external exa..mple.org", "Corefile:2: invalid zone"),
    ],
)
def test_bad_options_are_refused_at_their_line(text: str, message: str) -> None:
    with pytest.raises(CorefileError, match=message):
        from_text(f".:1053 {{\n {text}\n kubernetes\n}}\n", "Corefile")


LOOP = """
- apiVersion: v1
  kind: Service
  metadata: {name: loop-a, namespace: shop}
  spec: {type: LoadBalancer, clusterIP: 10.96.0.40, ports: [{name: http, port: 80}]}
  status: {loadBalancer: {ingress: [{hostname: loop-b.shop.svc.cluster.local}]}}
- apiVersion: v1
  kind: Service
  metadata: {name: loop-b, namespace: shop}
  spec: {type: ExternalName, externalName: loop-a.shop.example.org}
"""


async def test_a_cname_loop_across_plugins_ends(tmp_path: Path) -> None:
    # A load balancer hostname naming an ExternalName Service that names it back: each plugin
    # looks the other's target up through the server, a bounded number of times, and the
    # client gets the loop's CNAMEs once each.
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT + LOOP)
    async with fake_upstream() as up, running_kdns(corefile(up.port), tmp_path) as srv:
        msg = await ask(srv.port, "loop-a.shop.example.org.", "A")
        assert msg.rcode() == dns.rcode.NOERROR
        assert rrs(msg) == [
            ("loop-a.shop.example.org.", "CNAME", "loop-b.shop.svc.cluster.local."),
            ("loop-b.shop.svc.cluster.local.", "CNAME", "loop-a.shop.example.org."),
        ]
        assert up.received == []

"""Multicluster zones (kdns.cluster.multicluster): ServiceImports and their clusterset endpoints.

The cluster is a snapshot file read by the real loader (kdns.sources.static), so the object
projections, the schema checks and the index builder are exercised as they are in a server.
Expected answers follow CoreDNS's TestMultiClusterServeDNS cases.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kdns import config
from kdns.cluster import multicluster, selector
from kdns.cluster.answer import Answer
from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.objects import ServiceImport, Slice, endpoints
from kdns.cluster.options import Options
from kdns.diagnose.sources import Offline
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN
from kdns.sources import static

MC = "clusterset.local."
OPTS = Options(zones=("cluster.local.", MC), multicluster=(MC,))

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- {kind: Namespace, apiVersion: v1, metadata: {name: testns}}
- kind: Service
  apiVersion: v1
  metadata: {name: local, namespace: testns}
  spec: {clusterIP: 10.96.0.5, ports: [{name: http, port: 80}]}
- apiVersion: multicluster.x-k8s.io/v1alpha1
  kind: ServiceImport
  metadata: {name: svc1, namespace: testns, labels: {team: a}}
  spec:
    type: ClusterSetIP
    ips: [10.0.0.1, "fd00::1"]
    ports: [{name: http, port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
- apiVersion: multicluster.x-k8s.io/v1alpha1
  kind: ServiceImport
  metadata: {name: hdls1, namespace: testns}
  spec:
    type: Headless
    ports: [{name: http, port: 80, protocol: TCP}]
- apiVersion: multicluster.x-k8s.io/v1alpha1
  kind: ServiceImport
  metadata: {name: empty, namespace: testns}
  spec: {type: Headless}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: hdls1-c1
    namespace: testns
    labels:
      multicluster.kubernetes.io/service-name: hdls1
      multicluster.kubernetes.io/source-cluster: Cluster1
  addressType: IPv4
  endpoints:
  - {addresses: [172.0.0.2], conditions: {ready: true}}
  - {addresses: [172.0.0.4], hostname: db-0}
  - {addresses: [172.0.0.9], conditions: {ready: false}}
  ports: [{name: http, port: 80, protocol: TCP}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: hdls1-c2
    namespace: testns
    labels:
      multicluster.kubernetes.io/service-name: hdls1
      multicluster.kubernetes.io/source-cluster: cluster2
  addressType: IPv4
  endpoints:
  - {addresses: [172.1.0.2]}
  ports: [{name: http, port: 80, protocol: TCP}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: svc1-c1
    namespace: testns
    labels:
      multicluster.kubernetes.io/service-name: svc1
      multicluster.kubernetes.io/source-cluster: cluster1
  addressType: IPv4
  endpoints:
  - {addresses: [172.0.1.1], hostname: web-0}
  ports: [{name: http, port: 8080, protocol: TCP}]
"""


def load(text: str = SNAPSHOT) -> tuple[IndexBuilder, ClusterIndex]:
    builder = IndexBuilder()
    static.parse(text, "snap.yaml").load_into(builder)
    return builder, builder.publish()


@pytest.fixture(scope="module")
def index() -> ClusterIndex:
    return load()[1]


def ask(index: ClusterIndex, name: str, qtype: int = rr.A, opts: Options = OPTS) -> Answer:
    return multicluster.lookup(index, opts, name, qtype)


def rdata(result: Answer) -> list[str]:
    return sorted(rr.rdata_text(r) for r in result.reply.answer)


def test_clusterset_ip_import_answers_its_ips(index: ClusterIndex) -> None:
    a = ask(index, "svc1.testns.svc.clusterset.local.")
    assert a.reply.rcode == NOERROR and rdata(a) == ["10.0.0.1"]
    assert all(r.ttl == 5 and r.name == "svc1.testns.svc.clusterset.local." for r in a.reply.answer)
    assert rdata(ask(index, "svc1.testns.svc.clusterset.local.", rr.AAAA)) == ["fd00::1"]
    srv = ask(index, "_http._tcp.svc1.testns.svc.clusterset.local.", rr.SRV)
    assert rdata(srv) == ["0 50 80 svc1.testns.svc.clusterset.local."]
    assert sorted(rr.rdata_text(r) for r in srv.reply.additional) == ["10.0.0.1", "fd00::1"]
    # No `_port._proto`: one SRV per port (the CoreDNS extension the cluster zone has too).
    every = ask(index, "svc1.testns.svc.clusterset.local.", rr.SRV)
    assert [t.split()[2] for t in rdata(every)] == ["53", "80"]


def test_headless_import_answers_ready_endpoints_of_every_cluster(index: ClusterIndex) -> None:
    a = ask(index, "hdls1.testns.svc.clusterset.local.")
    assert rdata(a) == ["172.0.0.2", "172.0.0.4", "172.1.0.2"]  # 172.0.0.9 is not ready
    srv = ask(index, "_http._tcp.hdls1.testns.svc.clusterset.local.", rr.SRV)
    assert rdata(srv) == [
        "0 33 80 172-0-0-2.cluster1.hdls1.testns.svc.clusterset.local.",
        "0 33 80 172-1-0-2.cluster2.hdls1.testns.svc.clusterset.local.",
        "0 33 80 db-0.cluster1.hdls1.testns.svc.clusterset.local.",
    ]


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("172-0-0-2.cluster1.hdls1.testns.svc.clusterset.local.", ["172.0.0.2"]),
        ("DB-0.Cluster1.hdls1.testns.svc.clusterset.local.", ["172.0.0.4"]),
        ("172-1-0-2.cluster2.hdls1.testns.svc.clusterset.local.", ["172.1.0.2"]),
        # Endpoints of a ClusterSetIP import have names too, as those of a ClusterIP Service.
        ("web-0.cluster1.svc1.testns.svc.clusterset.local.", ["172.0.1.1"]),
    ],
)
def test_endpoint_names_carry_the_cluster_id(
    index: ClusterIndex, name: str, want: list[str]
) -> None:
    a = ask(index, name)
    assert (a.reply.rcode, rdata(a)) == (NOERROR, want)


@pytest.mark.parametrize(
    "name",
    [
        "172-0-0-2.hdls1.testns.svc.clusterset.local.",  # no cluster id
        "172-0-0-2.cluster2.hdls1.testns.svc.clusterset.local.",  # another cluster's endpoint
        "172-0-0-9.cluster1.hdls1.testns.svc.clusterset.local.",  # not ready
        "a.172-0-0-2.cluster1.hdls1.testns.svc.clusterset.local.",  # too long
        "nope.testns.svc.clusterset.local.",
        "local.testns.svc.clusterset.local.",  # a Service, not imported
        "svc1.otherns.svc.clusterset.local.",  # no such namespace
        "empty.testns.svc.clusterset.local.",  # headless without endpoints
        "_http._udp.svc1.testns.svc.clusterset.local.",  # no such port
    ],
)
def test_names_that_do_not_exist(index: ClusterIndex, name: str) -> None:
    a = ask(index, name)
    assert a.reply.rcode == NXDOMAIN and not a.exists
    assert [r.name for r in a.reply.authority] == [MC]


def test_other_types_and_names_of_the_zone(index: ClusterIndex) -> None:
    nodata = ask(index, "svc1.testns.svc.clusterset.local.", rr.TXT)
    assert (nodata.reply.rcode, nodata.reply.answer) == (NOERROR, ())
    assert [r.rtype for r in nodata.reply.authority] == [rr.SOA]
    # The apex and `<ns>.svc` are answered as in a cluster zone.
    assert ask(index, MC, rr.SOA).reply.answer[0].rtype == rr.SOA
    ns_name = ask(index, "testns.svc.clusterset.local.")
    assert (ns_name.reply.rcode, ns_name.reply.answer) == (NOERROR, ())


def test_filters_apply_to_imports(index: ClusterIndex) -> None:
    labelled = replace(OPTS, labels=selector.parse("team=b"))
    assert ask(index, "svc1.testns.svc.clusterset.local.", opts=labelled).reply.rcode == NXDOMAIN
    no_eps = replace(OPTS, noendpoints=True)
    assert ask(index, "hdls1.testns.svc.clusterset.local.", opts=no_eps).reply.rcode == NXDOMAIN
    assert rdata(ask(index, "svc1.testns.svc.clusterset.local.", opts=no_eps)) == ["10.0.0.1"]
    hidden = replace(OPTS, namespaces=frozenset({"other"}))
    assert ask(index, "svc1.testns.svc.clusterset.local.", opts=hidden).reply.rcode == NXDOMAIN


def test_changes_reach_the_next_snapshot() -> None:
    builder, first = load()
    # The slice stops backing the import (label removed): its endpoints leave.
    old = next(s for s in static.parse(SNAPSHOT, "s.yaml").slices if s.name == "hdls1-c2")
    builder.upsert(replace(old, mc_service=""))
    second = builder.publish()
    assert second.generation > first.generation
    assert [a.ip for a in second.import_addresses[("testns", "hdls1")]] == [
        "172.0.0.2",
        "172.0.0.4",
    ]
    # Deleting an import, and a relist without it, both remove it.
    builder.delete("ServiceImport", "testns", "svc1")
    assert ("testns", "svc1") not in builder.publish().imports
    builder.replace_all("ServiceImport", [])
    assert not builder.publish().imports
    # A publish with nothing changed keeps the snapshot.
    assert builder.publish() is builder.current


def test_slices_feed_both_zones() -> None:
    builder = IndexBuilder()
    records = tuple(endpoints(("ns", "svc"), (), ("10.0.0.7",)))
    both = Slice("ns", "s", "svc", "IPv4", records, (), None)
    builder.upsert(replace(both, mc_service="svc", cluster="c1"))
    builder.upsert(ServiceImport("ns", "svc", True, (), (), ()))
    index = builder.publish()
    assert [a.ip for a in index.import_addresses[("ns", "svc")]] == ["10.0.0.7"]
    builder.delete("EndpointSlice", "ns", "s")
    assert ("ns", "svc") not in builder.publish().import_addresses


def test_snapshot_checks_service_imports() -> None:
    bad = (
        SNAPSHOT
        + """
- apiVersion: multicluster.x-k8s.io/v1alpha1
  kind: ServiceImport
  metadata: {name: bad, namespace: testns}
  spec: {type: ClusterIP, ips: [not-an-ip], prots: []}
"""
    )
    with pytest.raises(static.SnapshotError) as err:
        static.parse(bad, "snap.yaml")
    text = "\n".join(err.value.errors)
    assert "snap.yaml:" in text and "spec.type must be ClusterSetIP or Headless" in text
    assert "spec.ips[0] 'not-an-ip' is not an IP address" in text
    assert any("unknown field spec.prots (did you mean ports?)" in w for w in err.value.warnings)
    snap = static.parse(SNAPSHOT, "snap.yaml")
    assert "3 serviceimports" in snap.summary()


def test_diagnose_offline_answers_multicluster_zones(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    corefile = tmp_path / "Corefile"
    corefile.write_text(
        ".:53 {\n    kubernetes cluster.local clusterset.local {\n        snapshot snap.yaml\n"
        "        multicluster clusterset.local\n    }\n}\n"
    )
    offline = Offline(config.load(corefile))
    got = offline.ask("svc1.testns.svc.clusterset.local.", rr.A)
    assert (got.rcode, [r[1] for r in got.records]) == (NOERROR, ["10.0.0.1"])
    assert offline.ask("svc1.testns.svc.cluster.local.", rr.A).rcode == NXDOMAIN

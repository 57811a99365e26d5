"""Zone-scoped names of headless services (kdns.cluster.zonal, the `zonal` option).

The cluster is a snapshot read by the real loader (kdns.sources.static), so the EndpointSlice
projection of `endpoints[].zone` and the index are exercised as in a server. Expected answers
follow CoreDNS's TestServeDNSZonal cases (plugin/kubernetes/zonal_test.go).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from kdns.cluster import answer, zonal
from kdns.cluster.answer import Answer
from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.options import Options
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN
from kdns.sources import static

OPTS = Options(zones=("cluster.local.",), zonal=True)

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- {kind: Namespace, apiVersion: v1, metadata: {name: testns}}
- kind: Service
  apiVersion: v1
  metadata: {name: hdls, namespace: testns}
  spec: {clusterIP: None}
- kind: Service
  apiVersion: v1
  metadata: {name: clstr, namespace: testns}
  spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 80}]}
- kind: Service
  apiVersion: v1
  metadata: {name: empty, namespace: testns}
  spec: {clusterIP: None}
- kind: Service
  apiVersion: v1
  metadata: {name: ext, namespace: testns}
  spec: {type: ExternalName, externalName: us-west-2b.pin._zone.hdls.testns.svc.cluster.local}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: hdls-slice
    namespace: testns
    labels: {kubernetes.io/service-name: hdls}
  addressType: IPv4
  endpoints:
  - {addresses: [172.0.0.1], zone: us-west-2a}
  - {addresses: [172.0.0.2], zone: US-West-2b}
  - {addresses: [172.0.0.3], zone: us-west-2b, hostname: db-3}
  - {addresses: [172.0.0.4], zone: us-west-2a, conditions: {ready: false}}
  - {addresses: [172.0.0.5], zone: corp.example.com}
  - {addresses: [172.0.0.6]}
  ports: [{name: http, port: 80, protocol: TCP}]
"""


@pytest.fixture(scope="module")
def index() -> ClusterIndex:
    builder = IndexBuilder()
    static.parse(SNAPSHOT, "snap.yaml").load_into(builder)
    return builder.publish()


def ask(index: ClusterIndex, name: str, qtype: int = rr.A, opts: Options = OPTS) -> Answer:
    found = zonal.lookup(index, opts, name, qtype)
    return found if found is not None else answer.lookup(index, opts, name, qtype)


def rdata(result: Answer) -> list[str]:
    return sorted(rr.rdata_text(r) for r in result.reply.answer)


HDLS = "hdls.testns.svc.cluster.local."


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("us-west-2a.pin._zone." + HDLS, ["172.0.0.1"]),  # 172.0.0.4 is not ready
        ("us-west-2b.pin._zone." + HDLS, ["172.0.0.2", "172.0.0.3"]),
        ("US-WEST-2B.pin._zone." + HDLS, ["172.0.0.2", "172.0.0.3"]),  # names ignore case
        ("us-west-2a.PIN._ZONE.HDLS.testns.svc.Cluster.Local.", ["172.0.0.1"]),
        ("us-west-2a.prefer._zone." + HDLS, ["172.0.0.1"]),
        ("corp.example.com.pin._zone." + HDLS, ["172.0.0.5"]),  # a zone value with dots
        # prefer: an empty zone falls back to every ready endpoint.
        (
            "us-west-2c.prefer._zone." + HDLS,
            ["172.0.0.1", "172.0.0.2", "172.0.0.3", "172.0.0.5", "172.0.0.6"],
        ),
    ],
)
def test_zone_selects_endpoints(index: ClusterIndex, name: str, want: list[str]) -> None:
    a = ask(index, name)
    assert a.reply.rcode == NOERROR and rdata(a) == want
    assert all(r.name == name and r.ttl == 5 for r in a.reply.answer)  # the case asked


@pytest.mark.parametrize("qtype", [rr.A, rr.AAAA, rr.TXT, rr.SRV])
def test_pin_to_a_zone_without_endpoints_is_nodata(index: ClusterIndex, qtype: int) -> None:
    """A drained zone and a typo alike: the name exists, so a search list stops there."""
    a = ask(index, "us-west-2c.pin._zone." + HDLS, qtype)
    assert a.reply.rcode == NOERROR and a.exists and not a.reply.answer
    [soa] = a.reply.authority
    assert soa.rtype == rr.SOA and soa.name == "cluster.local."
    empty = ask(index, "us-west-2a.prefer._zone.empty.testns.svc.cluster.local.", qtype)
    assert empty.reply.rcode == NOERROR and not empty.reply.answer


def test_other_types_are_nodata(index: ClusterIndex) -> None:
    a = ask(index, "us-west-2a.prefer._zone." + HDLS, rr.TXT)
    assert a.reply.rcode == NOERROR and not a.reply.answer and a.reply.authority


def test_srv_targets_are_the_endpoint_names(index: ClusterIndex) -> None:
    name = "us-west-2b.pin._zone." + HDLS
    a = ask(index, name, rr.SRV)
    assert rdata(a) == [
        "0 50 80 172-0-0-2.hdls.testns.svc.cluster.local.",
        "0 50 80 db-3.hdls.testns.svc.cluster.local.",
    ]
    assert sorted((r.name, rr.rdata_text(r)) for r in a.reply.additional) == [
        ("172-0-0-2.hdls.testns.svc.cluster.local.", "172.0.0.2"),
        ("db-3.hdls.testns.svc.cluster.local.", "172.0.0.3"),
    ]
    # The targets resolve as ordinary endpoint names.
    assert rdata(ask(index, "db-3.hdls.testns.svc.cluster.local.")) == ["172.0.0.3"]


@pytest.mark.parametrize(
    "name",
    [
        "us-west-2a.pin._zone.ghost.testns.svc.cluster.local.",  # no such service
        "us-west-2a.pin._zone.clstr.testns.svc.cluster.local.",  # not headless
        "us-west-2a.pin._zone.ext.testns.svc.cluster.local.",  # ExternalName
        "us-west-2a.florp._zone." + HDLS,  # unknown directive
        "pin._zone." + HDLS,  # no zone value: the stock too-long name
        "us-west-2a.pin.zone." + HDLS,
        "us-west-2a.pin._zone.hdls.otherns.svc.cluster.local.",
        "us-west-2a.pin._zone.x.testns.pod.cluster.local.",
    ],
)
def test_names_that_are_not_zonal_stay_nxdomain(index: ClusterIndex, name: str) -> None:
    a = ask(index, name)
    assert a.reply.rcode == NXDOMAIN and not a.exists
    assert [r.rtype for r in a.reply.authority] == [rr.SOA]


def test_without_the_option_zonal_names_do_not_exist(index: ClusterIndex) -> None:
    off = replace(OPTS, zonal=False)
    assert zonal.lookup(index, off, "us-west-2a.pin._zone." + HDLS, rr.A) is None
    assert ask(index, "us-west-2a.pin._zone." + HDLS, opts=off).reply.rcode == NXDOMAIN


def test_filters_hide_zonal_names(index: ClusterIndex) -> None:
    hidden = replace(OPTS, namespaces=frozenset({"other"}))
    assert ask(index, "us-west-2a.pin._zone." + HDLS, opts=hidden).reply.rcode == NXDOMAIN


def test_multicluster_and_reverse_zones_have_no_zonal_names(index: ClusterIndex) -> None:
    mc = replace(
        OPTS, zones=("cluster.local.", "clusterset.local."), multicluster=("clusterset.local.",)
    )
    name = "us-west-2a.pin._zone.hdls.testns.svc.clusterset.local."
    assert zonal.lookup(index, mc, name, rr.A) is None
    rev = replace(OPTS, zones=("cluster.local.", "in-addr.arpa."))
    assert zonal.lookup(index, rev, "1.0.0.172.in-addr.arpa.", rr.PTR) is None


def test_answers_depend_on_the_service_and_its_namespace(index: ClusterIndex) -> None:
    """The reply-replay contract: bytes stay valid while these index keys keep their versions."""
    for name in ("us-west-2a.pin._zone." + HDLS, "us-west-2c.pin._zone." + HDLS):
        assert ask(index, name).deps == (("testns", "hdls"), ("", "testns"))
    ghost = ask(index, "us-west-2a.pin._zone.ghost.testns.svc.cluster.local.")
    assert ghost.deps == (("testns", "ghost"), ("", "testns"))


def test_a_zone_only_change_re_versions_the_service() -> None:
    """Moving an endpoint to another zone changes zonal answers, so the service's version
    (what replayed answers are checked against) must change with it."""
    builder = IndexBuilder()
    static.parse(SNAPSHOT, "snap.yaml").load_into(builder)
    before = builder.publish()
    static.parse(SNAPSHOT, "snap.yaml").load_into(builder)  # the same objects again
    key = ("testns", "hdls")
    assert builder.publish().versions[key] == before.versions[key]
    moved = SNAPSHOT.replace(
        "{addresses: [172.0.0.1], zone: us-west-2a}", "{addresses: [172.0.0.1], zone: us-west-2c}"
    )
    static.parse(moved, "snap.yaml").load_into(builder)
    after = builder.publish()
    assert after.versions[key] != before.versions[key]
    assert rdata(ask(after, "us-west-2c.pin._zone." + HDLS)) == ["172.0.0.1"]
    assert not ask(after, "us-west-2a.pin._zone." + HDLS).reply.answer


def test_an_external_name_to_a_zonal_name_is_left_to_the_caller(index: ClusterIndex) -> None:
    """The CNAME's target is a zonal name: the plugin resolves it through the server, where
    this module answers it (answer.lookup alone would not know the name)."""
    a = ask(index, "ext.testns.svc.cluster.local.")
    assert a.chase == "us-west-2b.pin._zone.hdls.testns.svc.cluster.local."
    assert [r.rtype for r in a.reply.answer] == [rr.CNAME]

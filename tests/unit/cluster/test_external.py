"""k8s_external answers from an index (kdns.cluster.external): what the socket tests do not
reach — reverse zones, the kubernetes plugin's filters, edge names, index dependencies and the
records of a zone transfer."""

from __future__ import annotations

from typing import Any

from kdns.cluster import external, objects
from kdns.cluster import selector as selectors
from kdns.cluster.external import ExternalOptions
from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.options import Options
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN

OPTS = ExternalOptions(("example.org.", "in-addr.arpa."))
K8S = Options(server_ips=("10.244.0.53",))


def service(
    name: str, ips: list[str], hosts: tuple[str, ...] = (), **labels: str
) -> dict[str, Any]:
    ingress = [{"ip": ip} for ip in ips] + [{"hostname": h} for h in hosts]
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.20",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {"ingress": ingress}},
    }


def build(*svcs: dict[str, Any]) -> tuple[IndexBuilder, ClusterIndex]:
    b = IndexBuilder()
    b.upsert(objects.namespace_from({"metadata": {"name": "shop"}}))
    for s in svcs:
        b.upsert(objects.service_from(s))
    for kind in ("Namespace", "Service", "EndpointSlice"):
        b.mark_synced(kind)
    return b, b.publish()


def texts(records: tuple[rr.RR, ...] | list[rr.RR]) -> list[str]:
    return [f"{r.name} {rr.type_name(r.rtype)} {rr.rdata_text(r)}" for r in records]


def test_ptr_of_an_external_ip_names_every_service_in_the_forward_zone() -> None:
    _, index = build(service("web", ["203.0.113.10"]), service("api", ["203.0.113.10"]))
    got = external.answer(index, K8S, OPTS, "10.113.0.203.in-addr.arpa.", rr.PTR)
    assert sorted(texts(got.reply.answer)) == [
        "10.113.0.203.in-addr.arpa. PTR api.shop.example.org.",
        "10.113.0.203.in-addr.arpa. PTR web.shop.example.org.",
    ]
    missing = external.answer(index, K8S, OPTS, "11.113.0.203.in-addr.arpa.", rr.PTR)
    assert missing.reply.rcode == NXDOMAIN
    assert texts(missing.reply.authority)[0].startswith("in-addr.arpa. SOA ns1.dns.in-addr.arpa.")


def test_the_index_forgets_external_ips_a_service_lost() -> None:
    b, index = build(service("web", ["203.0.113.10"]))
    assert index.external_ip_owners["203.0.113.10"] == (("shop", "web"),)
    b.upsert(objects.service_from(service("web", ["203.0.113.11"])))
    index = b.publish()
    assert "203.0.113.10" not in index.external_ip_owners
    b.delete("Service", "shop", "web")
    assert b.publish().external_ip_owners == {}


def test_the_kubernetes_filters_hide_services_here_too() -> None:
    _, index = build(service("web", ["203.0.113.10"], tier="front"))
    hidden_ns = Options(namespaces=frozenset({"other"}))
    got = external.answer(index, hidden_ns, OPTS, "web.shop.example.org.", rr.A)
    assert got.reply.rcode == NXDOMAIN
    by_label = Options(labels=selectors.parse("tier=back"))
    got = external.answer(index, by_label, OPTS, "web.shop.example.org.", rr.A)
    assert got.reply.rcode == NXDOMAIN
    got = external.answer(index, by_label, OPTS, "10.113.0.203.in-addr.arpa.", rr.PTR)
    assert got.reply.rcode == NXDOMAIN


def test_names_below_a_service_and_mixed_ingress() -> None:
    _, index = build(service("web", ["203.0.113.10"], ("lb.example.net",)))
    below = external.answer(index, K8S, OPTS, "x.web.shop.example.org.", rr.A)
    assert below.reply.rcode == NXDOMAIN
    # Addresses win over the hostname: a CNAME cannot stand next to them.
    got = external.answer(index, K8S, OPTS, "web.shop.example.org.", rr.A)
    assert texts(got.reply.answer) == ["web.shop.example.org. A 203.0.113.10"]
    assert got.chase is None
    got = external.answer(index, K8S, OPTS, "web.shop.example.org.", rr.CNAME)
    assert got.reply.rcode == NOERROR and not got.reply.answer


def test_answers_name_the_index_keys_they_read() -> None:
    _, index = build(service("web", ["203.0.113.10"]))
    got = external.answer(index, K8S, OPTS, "web.shop.example.org.", rr.A)
    assert got.deps == (("shop", "web"), ("", "shop"))
    got = external.answer(index, K8S, OPTS, "nope.shop.example.org.", rr.A)
    assert got.reply.rcode == NXDOMAIN and got.deps == (("shop", "nope"), ("", "shop"))
    assert external.answer(index, K8S, OPTS, "shop.example.org.", rr.A).deps == (("", "shop"),)
    assert external.answer(index, K8S, OPTS, "example.org.", rr.NS).deps is None


def test_root_zone_and_custom_apex() -> None:
    _, index = build(service("web", ["203.0.113.10"]))
    opts = ExternalOptions((".",), apex="ext", ttl=30)
    got = external.answer(index, K8S, opts, ".", rr.NS)
    assert texts(got.reply.answer) == [". NS ns1.ext."]
    assert texts(got.reply.additional) == ["ns1.ext. A 10.244.0.53"]
    got = external.answer(index, K8S, opts, "web.shop.", rr.A)
    assert texts(got.reply.answer) == ["web.shop. A 203.0.113.10"]
    assert got.reply.answer[0].ttl == 30


def test_zone_records_of_a_reverse_zone_are_its_ptrs() -> None:
    _, index = build(service("web", ["203.0.113.10", "2001:db8::1"]))
    records = external.zone_records(index, K8S, OPTS, "in-addr.arpa.")
    assert records is not None
    assert texts(records)[0].startswith("in-addr.arpa. SOA ")
    assert texts(records)[1:] == [
        "in-addr.arpa. NS ns1.dns.in-addr.arpa.",
        "ns1.dns.in-addr.arpa. A 10.244.0.53",
        "10.113.0.203.in-addr.arpa. PTR web.shop.example.org.",
    ]
    forward = external.zone_records(index, K8S, OPTS, "example.org.")
    assert forward is not None
    assert texts(forward)[3:] == [
        "web.shop.example.org. A 203.0.113.10",
        "web.shop.example.org. AAAA 2001:db8::1",
        "_http._tcp.web.shop.example.org. SRV 0 50 80 web.shop.example.org.",
    ]
    assert external.zone_records(index, K8S, OPTS, "example.com.") is None

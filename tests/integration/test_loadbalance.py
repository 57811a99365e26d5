"""`loadbalance`: address order changes between replies, cache hits included; CNAME first."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kdns.corefile import CorefileError
from kdns.dns import names
from kdns.dns.records import MX, RR, a, cname, txt
from kdns.plugins.loadbalance import round_robin
from tests.support.client import ask, rrs
from tests.support.plugins import parse_directive
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- apiVersion: v1
  kind: Service
  metadata: {name: db, namespace: shop}
  spec: {clusterIP: None, ports: [{name: pg, port: 5432}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: db-1, namespace: shop, labels: {kubernetes.io/service-name: db}}
  addressType: IPv4
  endpoints:
""" + "".join(
    f"  - {{addresses: [10.1.0.{i}], conditions: {{ready: true}}}}\n" for i in range(1, 9)
)


def mx(name: str, ttl: int, pref: int, target: str) -> RR:
    return RR(name, MX, ttl, struct.pack("!H", pref) + names.to_wire(target))


def test_round_robin_keeps_cnames_first_and_shuffles_addresses() -> None:
    records = (
        cname("x.test.", 30, "y.test."),
        *(a("y.test.", 30, f"192.0.2.{i}") for i in range(1, 9)),
        txt("y.test.", 30, "keep"),
        mx("y.test.", 30, 10, "mail1.test."),
        mx("y.test.", 30, 20, "mail2.test."),
    )
    orders = set()
    for _ in range(50):
        out = round_robin(records)
        assert out[0] == records[0] and out[1].rtype == records[9].rtype
        assert sorted(out, key=repr) == sorted(records, key=repr)
        orders.add(tuple(r.rdata for r in out))
    assert len(orders) > 10


async def test_headless_answers_and_cache_hits_are_shuffled(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT)
    async with fake_upstream() as up:
        up.add("many.example.test.", "A", *[f"192.0.2.{i}" for i in range(1, 9)])
        corefile = (
            ".:PORT {\n bind 127.0.0.1\n loadbalance\n cache 30\n"
            " kubernetes cluster.local {\n  snapshot cluster.yaml\n }\n"
            f" forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            for qname, count in (("db.shop.svc.cluster.local.", 8), ("many.example.test.", 8)):
                orders = set()
                for _ in range(30):
                    msg = await ask(srv.port, qname, "A")
                    ips = [r[2] for r in rrs(msg)]
                    assert len(ips) == count
                    orders.add(tuple(ips))
                assert len(orders) > 5, qname
            assert up.counts[("many.example.test.", "A")] == 1  # the rest were cache hits


def test_unsupported_policies_are_refused() -> None:
    with pytest.raises(CorefileError, match="not supported"):
        parse_directive("loadbalance weighted /etc/weights", "loadbalance")
    with pytest.raises(CorefileError, match="unknown loadbalance policy"):
        parse_directive("loadbalance shuffle", "loadbalance")

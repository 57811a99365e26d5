"""`kdns diagnose` as a user runs it: a subprocess, offline from a Corefile or live against a
running kdns and a misbehaving upstream; and the server's search-path metric with real queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdns.cluster import search
from tests.support.client import ask
from tests.support.diagnose import diagnose, diagnose_json
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream

ROOT = Path(__file__).parents[2]

SNAPSHOT = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: testns}}
- {apiVersion: v1, kind: Namespace, metadata: {name: kube-system}}
- apiVersion: v1
  kind: Service
  metadata: {name: svc1, namespace: testns}
  spec: {type: ClusterIP, clusterIP: 10.0.0.1, clusterIPs: [10.0.0.1], ipFamilies: [IPv4],
         ports: [{name: http, port: 80, protocol: TCP}]}
- apiVersion: v1
  kind: Service
  metadata: {name: kubedns, namespace: kube-system}
  spec: {type: ClusterIP, clusterIP: 10.0.0.10, clusterIPs: [10.0.0.10], ipFamilies: [IPv4],
         ports: [{name: dns, port: 53, protocol: UDP}]}
- apiVersion: v1
  kind: Service
  metadata: {name: svc6, namespace: testns}
  spec: {type: ClusterIP, clusterIP: "1234:abcd::1", clusterIPs: ["1234:abcd::1"],
         ipFamilies: [IPv6], ports: [{name: http, port: 80, protocol: TCP}]}
"""

COREFILE = """\
.:PORT {
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        snapshot snapshot.yaml
        pods insecure
        ttl 5
        fallthrough in-addr.arpa ip6.arpa
    }
}
"""


def pairs(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(q["qname"], q["qtype"], q["rcode"]) for q in doc["queries"]]


async def test_offline_against_the_bundled_example() -> None:
    doc = await diagnose_json("web.shop", "--namespace", "shop")
    assert doc["mode"] == "offline"
    assert pairs(doc) == [
        ("web.shop.shop.svc.cluster.local.", "A", "NXDOMAIN"),
        ("web.shop.shop.svc.cluster.local.", "AAAA", "NXDOMAIN"),
        ("web.shop.svc.cluster.local.", "A", "NOERROR"),
        ("web.shop.svc.cluster.local.", "AAAA", "NOERROR"),
    ]
    assert doc["answer"] == ["10.96.12.34"]
    assert (doc["queries_sent"], doc["wasted"]) == (4, 2)
    assert [a["kind"] for a in doc["advice"]] == ["fqdn", "autopath"]


async def test_offline_never_guesses_upstream_names() -> None:
    doc = await diagnose_json("api.github.com", "-n", "shop", "--node-search", "ec2.internal")
    last = doc["queries"][-1]
    assert last["qname"] == "api.github.com.ec2.internal."
    assert last["rcode"] == "UPSTREAM?"
    assert doc["status"] == "unknown" and doc["answer"] is None
    assert doc["not_tried"] == ["api.github.com."]
    kinds = [a["kind"] for a in doc["advice"]]
    assert "ndots" in kinds
    ndots = next(a for a in doc["advice"] if a["kind"] == "ndots")
    assert '- name: ndots\n      value: "2"' in ndots["snippet"]


async def test_text_output_is_a_numbered_table_with_a_summary() -> None:
    code, out, _ = await diagnose("kubernetes.default", "-n", "shop", "--qtype", "A")
    assert code == 0
    assert "getaddrinfo(AF_INET)" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("#"))
    assert lines[header + 1].split()[:5] == [
        "1",
        "1",
        "kubernetes.default.shop.svc.cluster.local.",
        "A",
        "NXDOMAIN",
    ]
    assert "Summary: found after 2 queries, 1 wasted" in out
    assert "kubernetes.default.svc.cluster.local." in out


async def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = await diagnose("x", "--conf", str(tmp_path / "missing"))
    assert code == 1 and "offline mode reads --conf" in err
    (tmp_path / "resolv.conf").write_text("options ndots:lots\n")
    code, _, err = await diagnose("x", "--resolv-conf", str(tmp_path / "resolv.conf"))
    assert code == 1 and "resolv.conf:1" in err
    code, _, err = await diagnose("x", "--server", "127.0.0.1:notaport")
    assert code == 1 and "invalid port" in err


async def test_live_against_kdns_matches_the_model(tmp_path: Path) -> None:
    (tmp_path / "snapshot.yaml").write_text(SNAPSHOT)
    async with running_kdns(COREFILE, tmp_path) as srv:
        server = f"127.0.0.1:{srv.port}"
        for resolver in ("glibc", "musl"):
            doc = await diagnose_json(
                "kubedns.kube-system", "-n", "testns", "--server", server, "--resolver", resolver
            )
            assert pairs(doc) == [
                ("kubedns.kube-system.testns.svc.cluster.local.", "A", "NXDOMAIN"),
                ("kubedns.kube-system.testns.svc.cluster.local.", "AAAA", "NXDOMAIN"),
                ("kubedns.kube-system.svc.cluster.local.", "A", "NOERROR"),
                ("kubedns.kube-system.svc.cluster.local.", "AAAA", "NOERROR"),
            ]
            assert doc["answer"] == ["10.0.0.10"]
            assert all(q["time_ms"] is not None for q in doc["queries"])
        # Through a TCP-only path (kubectl port-forward): the same walk.
        tcp = await diagnose_json(
            "kubedns.kube-system", "-n", "testns", "--server", server, "--tcp"
        )
        assert pairs(tcp) == pairs(doc)
        # A-only lookup of an IPv6-only service: glibc walks on past NODATA, musl stops.
        glibc = await diagnose_json("svc6", "-n", "testns", "--server", server, "--qtype", "A")
        musl = await diagnose_json(
            "svc6", "-n", "testns", "--server", server, "--qtype", "A", "--resolver", "musl"
        )
        assert [q["qname"] for q in glibc["queries"]] == [
            "svc6.testns.svc.cluster.local.",
            "svc6.svc.cluster.local.",
            "svc6.cluster.local.",
            "svc6.",
        ]
        assert [q["qname"] for q in musl["queries"]] == ["svc6.testns.svc.cluster.local."]
        assert musl["status"] == "nodata" and glibc["answer"] is None
        both = await diagnose_json("svc6", "-n", "testns", "--server", server)
        assert both["answer"] == ["1234:abcd::1"] and both["wasted"] == 0


async def test_live_truncation_glibc_retries_over_tcp_musl_does_not() -> None:
    async with fake_upstream() as up:
        up.add("big.interwebs.test.", "A", *[f"10.1.0.{i}" for i in range(1, 61)])
        server = f"127.0.0.1:{up.port}"
        glibc = await diagnose_json("big.interwebs.test.", "--server", server, "--qtype", "A")
        musl = await diagnose_json(
            "big.interwebs.test.", "--server", server, "--qtype", "A", "--resolver", "musl"
        )
        assert len(glibc["answer"]) == 60
        assert [p for p in up.received if p[2] == "tcp"] == [("big.interwebs.test.", "A", "tcp")]
        assert musl["answer"] is None and musl["queries"][0]["tc"] is True
        assert [a["kind"] for a in musl["advice"]] == ["truncated"]


async def test_live_walk_through_an_upstream_with_nxdomain_and_servfail() -> None:
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        doc = await diagnose_json(
            "www.example.test", "-n", "testns", "--server", f"127.0.0.1:{up.port}"
        )
        sent = [(q, t) for q, t, _ in up.received]
        assert sent == [(q["qname"], q["qtype"]) for q in doc["queries"]]
        assert (doc["queries_sent"], doc["wasted"], doc["answer"]) == (8, 6, ["192.0.2.10"])
        kinds = {a["kind"] for a in doc["advice"]}
        assert {"fqdn", "ndots", "nodelocal"} <= kinds
        up.behaviour.mode = "servfail"
        musl = await diagnose_json(
            "a.b.c.d.servfail.test",
            "-n",
            "testns",
            "--resolver",
            "musl",
            "--server",
            f"127.0.0.1:{up.port}",
        )
        assert musl["queries_sent"] == 2 and musl["status"] == "error"
        assert "servfail" in {a["kind"] for a in musl["advice"]}


def sample(srv: Any, name: str, labels: dict[str, str] | None = None) -> float:
    value = srv.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else float(value)


async def test_search_path_metric_counts_real_expansions(tmp_path: Path) -> None:
    (tmp_path / "snapshot.yaml").write_text(SNAPSHOT)
    async with running_kdns(COREFILE, tmp_path) as srv:
        conf = search.pod_resolv_conf("testns")
        # What a pod in testns sends for www.example.test, twice (the second time the
        # replies may be re-served from bytes): three expansions, A and AAAA each.
        for _ in range(2):
            for cand in search.candidates(conf, "www.example.test")[:-1]:
                for qtype in ("A", "AAAA"):
                    reply = await ask(srv.port, cand.name, qtype)
                    assert reply.rcode() == 3
        await ask(srv.port, "svc0.testns.svc.cluster.local.", "A")  # a missing service
        await ask(srv.port, "svc1.testns.svc.cluster.local.", "A")  # found
        total = "kdns_search_path_queries_total"
        assert sample(srv, total, {"namespace": "testns"}) == 4
        assert sample(srv, total, {"namespace": ""}) == 8
        assert sample(srv, "kdns_kubernetes_nxdomain_total") == 13

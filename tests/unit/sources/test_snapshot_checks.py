"""Snapshot content checks: unknown kinds, misspelled fields and bad addresses, at their lines.

Warnings leave the snapshot serving; an object that cannot be served as written (a cluster IP
that is no address, an ExternalName without its name) is an error and refuses the snapshot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kdns.sources import static

DATA = Path(__file__).parents[2] / "data" / "snapshot-with-mistakes.yaml"
F = "snap.yaml"

WARNINGS = [
    f"{F}:7: kind 'Servce' is not one kdns reads (did you mean Service?): object skipped",
    f"{F}:16: Service default/web: unknown field spec.ports[0].protocl (did you mean protocol?)",
    f"{F}:22: Service default/pay: unknown field spec.externalname (did you mean externalName?)",
    f"{F}:30: EndpointSlice default/web-1: endpoints[0].addresses[1] '10.1.1.300' is not an "
    "IP address: skipped",
    f"{F}:31: EndpointSlice default/web-1: unknown field endpoints[0].condition "
    "(did you mean conditions?)",
    f"{F}:35: Pod default/web-0: status.podIP '10.244.0.256' is not an IP address: skipped",
]
ERRORS = [
    f"{F}:14: Service default/web: spec.clusterIP '10.96.777.7' is not an IP address",
    f"{F}:20: Service default/pay: type ExternalName needs spec.externalName",
]


def test_every_mistake_is_reported_at_its_line_in_one_pass() -> None:
    with pytest.raises(static.SnapshotError) as err:
        static.parse(DATA.read_text(), F)
    assert list(err.value.errors) == ERRORS
    assert list(err.value.warnings) == WARNINGS
    assert err.value.line == 14
    assert str(err.value) == "\n".join(ERRORS)


def test_warnings_alone_leave_the_snapshot_serving() -> None:
    docs = yaml.safe_load(DATA.read_text())
    web, pay = docs["items"][1], docs["items"][2]
    web["spec"]["clusterIP"] = "10.96.7.7"
    pay["spec"]["externalName"] = pay["spec"].pop("externalname")
    snap = static.parse(yaml.safe_dump(docs, sort_keys=False), F)
    assert [s.name for s in snap.services] == ["web", "pay"]
    assert snap.services[1].external_name == "pay.example.com"
    assert [e.ip for s in snap.slices for e in s.endpoints] == ["10.1.1.1"]
    assert [p.ips for p in snap.pods] == [()]
    # The same warnings (at the lines of the re-dumped file), less the one fixed above.
    fixed = [w.split(": ", 1)[1] for w in WARNINGS if "externalname" not in w]
    assert [w.split(": ", 1)[1] for w in snap.warnings] == fixed


def test_a_clean_snapshot_has_no_warnings() -> None:
    bundled = Path(__file__).parents[3] / "examples" / "cluster.yaml"
    snap = static.parse(bundled.read_text(), "cluster.yaml")
    assert snap.warnings == []
    assert snap.services


def test_kinds_of_a_cluster_dump_that_dns_does_not_use_are_skipped_quietly() -> None:
    text = "kind: Deployment\nmetadata: {name: web}\n---\nkind: ConfigMap\nmetadata: {name: c}\n"
    assert static.parse(text, F).warnings == []
    unknown = static.parse("kind: Frobnicator\nmetadata: {name: x}\n", F)
    assert unknown.warnings == [f"{F}:1: kind 'Frobnicator' is not one kdns reads: object skipped"]


def test_json_snapshot_problems_have_lines_too() -> None:
    items = [
        {"kind": "Namespace", "metadata": {"name": "a"}},
        {"kind": "Service", "metadata": {"name": "s", "namespace": "a"}, "spec": {"clusterIp": ""}},
    ]
    text = json.dumps({"kind": "List", "items": items}, indent=1)
    snap = static.parse(text, "c.json")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if '"clusterIp"' in t)
    assert snap.warnings == [
        f"c.json:{line}: Service a/s: unknown field spec.clusterIp (did you mean clusterIP?)"
    ]


def test_legacy_endpoints_and_cluster_ips_lists_are_checked() -> None:
    text = """\
kind: Endpoints
metadata: {name: old, namespace: default}
subsets:
- addresses:
  - {ip: 10.0.0.1, hostnme: a}
  - {ip: not-an-ip}
---
kind: Service
metadata: {name: dual, namespace: default}
spec: {clusterIPs: [10.96.0.9, "fd00::zz"]}
"""
    with pytest.raises(static.SnapshotError) as err:
        static.parse(text, F)
    assert err.value.errors == (
        f"{F}:10: Service default/dual: spec.clusterIPs[1] 'fd00::zz' is not an IP address",
    )
    assert err.value.warnings == (
        f"{F}:5: Endpoints default/old: unknown field subsets[0].addresses[0].hostnme "
        "(did you mean hostname?)",
        f"{F}:6: Endpoints default/old: subsets[0].addresses[1].ip 'not-an-ip' is not an "
        "IP address: skipped",
    )


EXTERNAL = """\
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.20
  externalIPs: [198.51.100.7, "::ffff:192.0.2.9"]
  ports: [{name: http, port: 80, protocol: TCP, nodePort: 30080}]
status:
  conditions: []
  loadBalancer:
    ingress:
    - {ip: 203.0.113.10, ipMode: VIP, ports: [{port: 80, protocol: TCP}]}
    - {hostname: LB-1.elb.example.net}
"""


def test_external_addresses_of_a_service_are_read_without_warnings() -> None:
    snap = static.parse(EXTERNAL, F)
    assert snap.warnings == []
    (web,) = snap.services
    assert web.external_ips == ("198.51.100.7", "192.0.2.9", "203.0.113.10")
    assert web.external_hosts == ("lb-1.elb.example.net.",)


def test_bad_external_addresses_are_skipped_with_a_warning() -> None:
    text = EXTERNAL.replace("198.51.100.7", "198.51.100.700").replace("ipMode", "ipmode")
    snap = static.parse(text, F)
    assert snap.warnings == [
        f"{F}:6: Service shop/web: spec.externalIPs[0] '198.51.100.700' is not an IP address: "
        "skipped",
        f"{F}:12: Service shop/web: unknown field status.loadBalancer.ingress[0].ipmode "
        "(did you mean ipMode?)",
    ]
    assert snap.services[0].external_ips == ("192.0.2.9", "203.0.113.10")

"""Every case of conformance.yaml against a real kdns serving the fixture as a snapshot.

The file is a copy of the project's conformance suite (cluster fixture + exact expected replies,
with the matching rules at its end). Cases are grouped by configuration; each group gets one
server and one fake upstream, and every case is asked over real sockets with dnspython.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
import yaml

from kdns.plugins import directives
from tests.support.client import ask
from tests.support.server import Running, running_kdns
from tests.support.upstream import FakeUpstream, fake_upstream

HERE = Path(__file__).parent
SUITE = yaml.safe_load((HERE / "conformance.yaml").read_text())
BASE = SUITE["server_config"]
CONFIG_KEYS = (
    "zones",
    "namespaces",
    "labels",
    "endpoint_pod_names",
    "ignore_empty_service",
    "noendpoints",
    "multicluster",
    "autopath",
    "pods",
    "ttl",
    "fixture_groups",
)


def effective_config(case: dict[str, Any]) -> dict[str, Any]:
    cfg = {k: BASE.get(k) for k in CONFIG_KEYS}
    cfg.update(case.get("config") or {})
    if case.get("precondition") == "api_not_synced":
        cfg["not_synced"] = True
    return cfg


def corefile_for(cfg: dict[str, Any], upstream_port: int) -> str:
    zones = " ".join(z.rstrip(".") for z in cfg["zones"] or ["cluster.local."])
    lines = [
        f"snapshot {'missing.yaml' if cfg.get('not_synced') else 'fixture.yaml'}",
        f"pods {cfg['pods']}",
        f"ttl {cfg['ttl']}",
        "fallthrough in-addr.arpa ip6.arpa",
    ]
    if cfg.get("not_synced"):
        lines.append("startup_timeout 100ms")
    if cfg.get("namespaces"):
        lines.append("namespaces " + " ".join(cfg["namespaces"]))
    if cfg.get("labels"):
        lines.append(f"labels {cfg['labels']}")
    if cfg.get("endpoint_pod_names"):
        lines.append("endpoint_pod_names")
    if cfg.get("ignore_empty_service"):
        lines.append("ignore empty_service")
    if cfg.get("noendpoints"):
        lines.append("noendpoints")
    if cfg.get("multicluster"):
        lines.append("multicluster " + " ".join(z.rstrip(".") for z in cfg["multicluster"]))
    body = "\n        ".join(lines)
    extra = "    autopath @kubernetes\n" if cfg.get("autopath") else ""
    forward = f"    forward . 127.0.0.1:{upstream_port}\n" if directives.spec("forward") else ""
    return (
        ".:PORT {\n    bind 127.0.0.1\n"
        f"    kubernetes {zones} {{\n        {body}\n    }}\n{extra}{forward}}}\n"
    )


def stub_upstream(up: FakeUpstream) -> None:
    for rec in SUITE["upstream_stub"]["records"]:
        if rec["name"] == "big.interwebs.test.":
            up.add(rec["name"], "A", *[f"198.51.100.{i}" for i in range(1, 61)])
        else:
            up.add(rec["name"], rec["type"], rec["rdata"])


def skip_reason(case: dict[str, Any]) -> str | None:
    cfg = effective_config(case)
    if case.get("optional") and not set(cfg.get("fixture_groups") or ()) <= {
        "fixture_multicluster"
    }:
        return "optional feature kdns does not implement; see README"
    if cfg.get("autopath") and directives.spec("autopath") is None:
        return "autopath is not implemented yet"
    needs_forward = case["group"] == "forward" or case["id"] in ("ptr-011", "ptr-012", "ext-008")
    if needs_forward and directives.spec("forward") is None:
        return "forward is not implemented yet"
    if case.get("client_ip"):
        return "needs a query from a pod address (covered by the autopath tests)"
    return None


GROUPS: dict[str, list[dict[str, Any]]] = {}
for _case in SUITE["cases"]:
    GROUPS.setdefault(json.dumps(effective_config(_case), sort_keys=True), []).append(_case)


def fixture_items(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The base fixture, plus the extra object groups the case's config names."""
    items = list(SUITE["fixture"])
    for group in cfg.get("fixture_groups") or ():
        items.extend(SUITE[group])
    return items


@pytest.fixture
async def server_for(tmp_path: Path) -> AsyncIterator[Any]:
    servers: dict[str, Running] = {}
    stack: list[Any] = []

    async def get(key: str) -> Running:
        if key not in servers:
            up_cm = fake_upstream()
            up = await up_cm.__aenter__()
            stack.append(up_cm)
            stub_upstream(up)
            cfg = json.loads(key)
            d = tmp_path / f"s{len(servers)}"
            d.mkdir()
            (d / "fixture.yaml").write_text(
                yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": fixture_items(cfg)})
            )
            cm = running_kdns(corefile_for(cfg, up.port), d)
            servers[key] = await cm.__aenter__()
            stack.append(cm)
        return servers[key]

    yield get
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


def _norm_name(name: str, case_sensitive: bool) -> str:
    return name if case_sensitive else name.lower()


def _expected_rrs(case: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return list(case.get(key) or [])


def _rdata_equal(exp: dict[str, Any], got: str, case: dict[str, Any]) -> bool:
    want = str(exp["rdata"])
    match = case.get("rdata_match")
    if exp["type"] == "SOA" and match == "soa_ignore_serial":
        w, g = want.split(), got.split()
        return len(g) == 7 and w[:2] == g[:2] and w[3:] == g[3:]
    if exp["type"] == "NS" and match == "ns_any_of":
        return got.lower() in [n.lower() for n in case.get("ns_names_any_of", [])]
    if exp["type"] == "SRV":
        w, g = want.split(), got.split()
        return (w[:3] == g[:3] and w[3].lower() == g[3].lower()) or (
            case.get("case_sensitive") and w == g
        )
    return want.lower() == got.lower()


def _check_section(
    case: dict[str, Any],
    got: list[tuple[str, str, str, int]],
    expected: list[dict[str, Any]],
    what: str,
) -> None:
    cs = bool(case.get("case_sensitive"))
    policy = case.get("answer_policy", "exact") if what == "answer" else "exact"
    unmatched = list(got)
    missing = []
    for exp in expected:
        hit = None
        for g in unmatched:
            if g[1] != exp["type"]:
                continue
            if not exp["name"].startswith("<") and _norm_name(g[0], cs) != _norm_name(
                exp["name"], cs
            ):
                continue
            if not _rdata_equal(exp, g[2], case):
                continue
            if "ttl" in exp and g[3] != exp["ttl"]:
                continue
            hit = g
            break
        if hit is None:
            missing.append(exp)
        else:
            unmatched.remove(hit)
    if policy == "subset":
        assert not unmatched, f"{what}: unexpected records {unmatched}"
        return
    assert not missing, f"{what}: missing {missing}; got {got}"
    if policy != "must_include":
        assert not unmatched, f"{what}: unexpected records {unmatched}"


def _section(msg: dns.message.Message, name: str) -> list[tuple[str, str, str, int]]:
    out = []
    for rrset in getattr(msg, name):
        for rd in rrset:
            out.append(
                (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text(), rrset.ttl)
            )
    return out


def check(case: dict[str, Any], msg: dns.message.Message) -> None:
    want_rcode = case["rcode"]
    assert dns.rcode.to_text(msg.rcode()) == want_rcode, (
        f"rcode {dns.rcode.to_text(msg.rcode())}, want {want_rcode}"
    )
    answer = _section(msg, "answer")
    _check_section(case, answer, _expected_rrs(case, "answer"), "answer")
    if case.get("answer_order") == "cname_first":
        types = [t for _, t, _, _ in answer]
        if "CNAME" in types:
            assert types[0] == "CNAME", f"CNAME must come first: {types}"
    auth = case.get("authority", "any")
    authority = _section(msg, "authority")
    if auth == "none":
        assert authority == [], f"authority must be empty, got {authority}"
    elif auth == "SOA":
        soas = [a for a in authority if a[1] == "SOA"]
        assert len(soas) == 1 and len(authority) == 1, f"want one SOA, got {authority}"
        owner = case.get("authority_owner")
        if owner != "any":
            zone = owner or _zone_of(case)
            cs = bool(case.get("case_sensitive"))
            assert _norm_name(soas[0][0], cs) == _norm_name(zone, cs)
        over = case.get("authority_soa") or {}
        fields = soas[0][2].split()
        if "ttl" in over:
            assert soas[0][3] == over["ttl"]
        if "minimum" in over:
            assert int(fields[6]) == over["minimum"]
    if case.get("additional") and not any(
        str(a["name"]).startswith("<") for a in case["additional"]
    ):
        _check_section(case, _section(msg, "additional"), case["additional"], "additional")
    for flag, value in (case.get("flags") or {}).items():
        bit = {"aa": dns.flags.AA, "tc": dns.flags.TC}[flag]
        assert bool(msg.flags & bit) == value, f"flag {flag} should be {value}"


def _zone_of(case: dict[str, Any]) -> str:
    q = case["qname"].lower()
    for z in ("in-addr.arpa.", "ip6.arpa.", "clusterset.local.", "cluster.local."):
        if q.endswith(z):
            return z
    return "cluster.local."


@pytest.mark.parametrize(
    "group_key", list(GROUPS), ids=[",".join(c["id"] for c in g[:3]) for g in GROUPS.values()]
)
async def test_conformance_group(group_key: str, server_for: Any) -> None:
    failures = []
    ran = 0
    for case in GROUPS[group_key]:
        if skip_reason(case):
            continue
        srv = await server_for(group_key)
        edns = case.get("edns", 0)
        qclass = case.get("qclass", "IN")
        try:
            msg = await ask(
                srv.port,
                case["qname"],
                case["qtype"],
                tcp=case.get("transport") == "tcp",
                edns=None if edns is None else 0,
                qclass=qclass,
            )
            check(case, msg)
            ran += 1
        except AssertionError as exc:
            failures.append(f"{case['id']} {case['qname']} {case['qtype']}: {exc}")
    assert not failures, "\n".join(failures)
    skipped = [c["id"] for c in GROUPS[group_key] if skip_reason(c)]
    if not ran and skipped:
        pytest.skip(f"all cases skipped: {skipped} ({skip_reason(GROUPS[group_key][0])})")


def test_every_case_is_counted() -> None:
    """The copy has every case, and only client-address cases are ever skipped."""
    ids = [c["id"] for c in SUITE["cases"]]
    assert len(ids) == len(set(ids)) and len(ids) > 80
    skipped = {c["id"] for c in SUITE["cases"] if skip_reason(c)}
    assert skipped == {c["id"] for c in SUITE["cases"] if c.get("client_ip")}
    assert {"mc-001", "mc-002", "mc-003"} <= set(ids) - skipped

"""The search-walk model against what real glibc and musl resolvers sent, and the conformance
search cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdns.cluster import search
from kdns.cluster.advice import advise
from kdns.cluster.search import GLIBC, MUSL, Outcome, Walk
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN, REFUSED, SERVFAIL

DATA = Path(__file__).parents[2] / "data" / "real_resolvers.yaml"
CONFORMANCE = Path(__file__).parents[2] / "conformance" / "conformance.yaml"
REAL = yaml.safe_load(DATA.read_text())
RCODES = {"NOERROR": NOERROR, "NXDOMAIN": NXDOMAIN, "SERVFAIL": SERVFAIL, "REFUSED": REFUSED}
BIG = [f"10.1.0.{i}" for i in range(1, 61)]

Oracle = Callable[[str, int], Outcome]


def real_server(resolver: str) -> Oracle:
    """The capture's DNS server, as the given library saw it (glibc retries TC over TCP)."""
    table: dict[str, dict[str, dict[str, Any]]] = REAL["server"]

    def ask(qname: str, qtype: int) -> Outcome:
        entry = table.get(qname, {}).get(rr.type_name(qtype))
        if entry is None:
            return Outcome(NXDOMAIN)
        records: list[tuple[int, str]] = [(qtype, ip) for ip in entry.get("answer", ())]
        if "cname" in entry:
            records.append((rr.CNAME, entry["cname"]))
        if entry.get("tc"):
            if resolver == GLIBC:
                return Outcome(NOERROR, tuple((qtype, ip) for ip in BIG))
            return Outcome(NOERROR, (), tc=True)
        return Outcome(RCODES[entry["rcode"]], tuple(records))

    return ask


def run(walk: Walk, ask: Oracle) -> Walk:
    while (cand := walk.next_step()) is not None:
        walk.record([ask(cand.name, t) for t in walk.qtypes])
    return walk


def steps_of(walk: Walk) -> list[str]:
    return [
        f"{cand.name} {'+'.join(rr.type_name(t) for t in walk.qtypes)}" for cand, _ in walk.steps
    ]


CLIENTS = {
    "glibc_ahostsv4": (GLIBC, (rr.A,)),
    "glibc_ahosts": (GLIBC, (rr.A, rr.AAAA)),
    "musl_unspec": (MUSL, (rr.A, rr.AAAA)),
    "musl_inet": (MUSL, (rr.A,)),
}
CAPTURES = [
    (c["name"], client, c) for c in REAL["captures"] for client in [*CLIENTS, "glibc_hosts"]
]


def expected_addresses(capture: dict[str, Any], client: str) -> list[str]:
    addrs = capture["addresses"].get(client, capture["addresses"]["all"])
    return BIG if addrs == "big" else list(addrs)


@pytest.mark.parametrize(("name", "client", "capture"), CAPTURES, ids=lambda v: str(v)[:40])
def test_walk_matches_real_resolver(name: str, client: str, capture: dict[str, Any]) -> None:
    conf = search.parse_resolv_conf(REAL["resolv_conf"])
    if client == "glibc_hosts":
        # gethostbyname2(AF_INET6) walk, then gethostbyname2(AF_INET) when it found nothing.
        ask = real_server(GLIBC)
        walks = [run(Walk(conf, name, GLIBC, (rr.AAAA,)), ask)]
        if walks[0].result is None or walks[0].result.status != "found":
            walks.append(run(Walk(conf, name, GLIBC, (rr.A,)), ask))
        assert [s for w in walks for s in steps_of(w)] == capture[client]
        final = walks[-1].result
    else:
        resolver, qtypes = CLIENTS[client]
        walk = run(Walk(conf, name, resolver, qtypes), real_server(resolver))
        assert steps_of(walk) == capture[client]
        assert walk.queries_sent == len(capture[client]) * len(qtypes)
        final = walk.result
    assert final is not None
    want = expected_addresses(capture, client)
    assert sorted(final.answer or ()) == sorted(want)
    assert (final.status == "found") == bool(want)
    if client.startswith("musl") and capture.get("musl_status"):
        assert final.status == capture["musl_status"]


SEARCH_CASES = yaml.safe_load(CONFORMANCE.read_text())["search_cases"]


@pytest.mark.parametrize("case", SEARCH_CASES, ids=lambda c: c["id"])
@pytest.mark.parametrize("resolver", [GLIBC, MUSL])
def test_conformance_search_cases(case: dict[str, Any], resolver: str) -> None:
    conf = search.pod_resolv_conf(case["client_namespace"])
    replies = {q["qname"]: q for q in case["queries"]}

    def ask(qname: str, qtype: int) -> Outcome:
        q = replies.get(qname)
        if q is None:
            raise AssertionError(f"{qname} was not expected to be asked")
        return Outcome(RCODES[q["rcode"]], tuple((qtype, ip) for ip in q.get("answer", ())))

    qtypes = search.lookup_types(case["qtype"])
    walk = run(Walk(conf, case["name"], resolver, qtypes), ask)
    assert [q.qname for q in walk.queries] == [q["qname"] for q in case["queries"]]
    last = case["queries"][-1]
    assert walk.result is not None
    assert list(walk.result.answer or ()) == last.get("answer", [])
    assert walk.wasted == len(case["queries"]) - 1


def test_resolv_conf_parsing() -> None:
    conf = search.parse_resolv_conf(
        "# pod\nnameserver 10.96.0.10\ndomain old.example\n"
        "search ns1.svc.cluster.local svc.cluster.local cluster.local ec2.internal\n"
        "options ndots:5 attempts:3 timeout:2 single-request-reopen\n"
    )
    assert conf.search == (
        "ns1.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
        "ec2.internal.",
    )
    assert (conf.ndots, conf.attempts, conf.timeout) == (5, 3, 2)
    assert conf.nameservers == ("10.96.0.10",)
    assert conf.has_option("single-request-reopen")
    assert search.parse_resolv_conf("options ndots:99").ndots == 15
    with pytest.raises(search.ResolvConfError, match="x:1"):
        search.parse_resolv_conf("options ndots:many", "x")


def test_pod_resolv_conf_adds_node_search_domains() -> None:
    conf = search.pod_resolv_conf("shop", node_search=["ec2.internal"])
    assert conf.search == (
        "shop.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
        "ec2.internal.",
    )
    assert conf.ndots == 5
    assert "options ndots:5" in conf.text()


def test_ndots_and_trailing_dot_candidates() -> None:
    conf = search.pod_resolv_conf("ns", ndots=2)
    names = [c.name for c in search.candidates(conf, "api.example.com", GLIBC)]
    assert names[0] == "api.example.com."  # 2 dots >= ndots: as typed first
    assert len(names) == 4
    assert [c.name for c in search.candidates(conf, "api.example.com", MUSL)] == [
        "api.example.com."
    ]
    assert [c.name for c in search.candidates(conf, "api.example.com.", GLIBC)] == [
        "api.example.com."
    ]
    assert search.candidates(conf, "web.shop", MUSL)[-1].name == "web.shop."


def test_musl_stops_at_a_wildcard_in_a_node_search_domain_glibc_does_not() -> None:
    # A wildcard *.corp.example answers NOERROR without AAAA data: musl ends there with no
    # address, glibc goes on (neither reply has an answer record) and finds the real name.
    conf = search.pod_resolv_conf("ns", node_search=["corp.example"])

    def ask(qname: str, qtype: int) -> Outcome:
        if qname == "api.example.com.corp.example.":
            return Outcome(NOERROR, ((qtype, "10.9.9.9"),) if qtype == rr.A else ())
        if qname == "api.example.com.":
            return Outcome(NOERROR, ((rr.A, "203.0.113.7"),) if qtype == rr.A else ())
        return Outcome(NXDOMAIN)

    glibc = run(Walk(conf, "api.example.com", GLIBC), ask)
    musl = run(Walk(conf, "api.example.com", MUSL), ask)
    # The wildcard has an A record: both stop there with the wrong address.
    assert glibc.result is not None and glibc.result.answer == ("10.9.9.9",)
    assert musl.result is not None and musl.result.answer == ("10.9.9.9",)

    def ask_nodata(qname: str, qtype: int) -> Outcome:
        if qname == "api.example.com.corp.example.":
            return Outcome(NOERROR)  # exists, but no address of either type
        return ask(qname, qtype)

    glibc = run(Walk(conf, "api.example.com", GLIBC), ask_nodata)
    musl = run(Walk(conf, "api.example.com", MUSL), ask_nodata)
    assert glibc.result is not None and glibc.result.answer == ("203.0.113.7",)
    assert musl.result is not None and musl.result.status == "nodata"
    assert len(musl.steps) == 4
    kinds = [a.kind for a in advise(musl)]
    assert "musl-stop" in kinds
    # Told which skipped name answers, the advice names it.
    stop = next(a for a in advise(musl, later="api.example.com.") if a.kind == "musl-stop")
    assert stop.text.endswith(
        "(api.example.com. has an address). Look the name up with a trailing dot: api.example.com."
    )


def test_no_musl_stop_advice_when_the_skipped_names_have_no_address() -> None:
    # svc6 exists with only an AAAA record: musl's AF_INET lookup stops at its NODATA. The names
    # it skipped (svc6.svc.cluster.local. ... svc6.) do not exist, so a trailing dot on any of
    # them would not help: seen with real musl in a network namespace.
    conf = search.pod_resolv_conf("testns")
    walk = run(Walk(conf, "svc6", MUSL, (rr.A,)), real_server(MUSL))
    assert walk.result is not None and walk.result.status == "nodata"
    assert "musl-stop" not in {a.kind for a in advise(walk, later="")}
    assert "musl-stop" in {a.kind for a in advise(walk, later=None)}


def test_glibc_leaves_the_search_list_on_refused_but_still_tries_the_name() -> None:
    conf = search.pod_resolv_conf("ns")

    def ask(qname: str, qtype: int) -> Outcome:
        if qname == "x.y.svc.cluster.local.":
            return Outcome(REFUSED)
        return Outcome(NXDOMAIN)

    walk = run(Walk(conf, "x.y", GLIBC, (rr.A,)), ask)
    assert [c.name for c, _ in walk.steps] == [
        "x.y.ns.svc.cluster.local.",
        "x.y.svc.cluster.local.",
        "x.y.",
    ]
    musl = run(Walk(conf, "x.y", MUSL, (rr.A,)), ask)
    assert len(musl.steps) == 2 and musl.result is not None and musl.result.status == "error"


def test_glibc_aaaa_servfail_after_a_nodata_ends_the_search() -> None:
    # res_search continues after TRY_AGAIN only when the *first* reply was SERVFAIL.
    conf = search.pod_resolv_conf("ns")

    def ask(qname: str, qtype: int) -> Outcome:
        if qname == "h.ns.svc.cluster.local.":
            return Outcome(NOERROR) if qtype == rr.A else Outcome(SERVFAIL)
        return Outcome(NXDOMAIN)

    walk = run(Walk(conf, "h", GLIBC), ask)
    assert [c.name for c, _ in walk.steps] == ["h.ns.svc.cluster.local.", "h."]


def test_timeout_counts_as_no_reply() -> None:
    conf = search.pod_resolv_conf("ns")
    walk = run(Walk(conf, "a.b", MUSL, (rr.A,)), lambda q, t: Outcome(None))
    assert walk.result is not None and walk.result.status == "error"
    assert "Try again" in walk.result.message
    assert walk.queries[0].answer.rcode_text == "TIMEOUT"


def test_glibc_ends_the_lookup_when_no_server_is_reached() -> None:
    # __res_context_search: ECONNREFUSED returns TRY_AGAIN from inside the search loop, so the
    # name as typed is not tried either; a name tried as typed first still goes on to the list.
    conf = search.pod_resolv_conf("ns")
    refused = Outcome(None, note="ICMP port unreachable", failure="REFUSED", unreachable=True)
    walk = run(Walk(conf, "x.y", GLIBC), lambda q, t: refused)
    assert [c.name for c, _ in walk.steps] == ["x.y.ns.svc.cluster.local."]
    assert walk.result is not None and "EAI_AGAIN" in walk.result.message
    assert walk.queries[0].answer.rcode_text == "REFUSED"
    assert [a.kind for a in advise(walk)] == ["no-reply"]
    deep = run(Walk(conf, "a.b.c.d.e.f", GLIBC, (rr.A,)), lambda q, t: refused)
    assert [c.name for c, _ in deep.steps] == ["a.b.c.d.e.f.", "a.b.c.d.e.f.ns.svc.cluster.local."]
    reset = Outcome(None, failure="RESET")  # not ECONNREFUSED: like a timeout
    walk = run(Walk(conf, "x.y", GLIBC), lambda q, t: reset)
    assert [c.name for c, _ in walk.steps] == ["x.y.ns.svc.cluster.local.", "x.y."]


def test_musl_res_search_for_other_types_does_not_search() -> None:
    conf = search.pod_resolv_conf("ns")
    walk = run(Walk(conf, "_http._tcp.web", MUSL, (rr.SRV,)), lambda q, t: Outcome(NXDOMAIN))
    assert [c.name for c, _ in walk.steps] == ["_http._tcp.web."]
    glibc = run(Walk(conf, "_http._tcp.web", GLIBC, (rr.SRV,)), lambda q, t: Outcome(NXDOMAIN))
    assert len(glibc.steps) == 4


def test_offline_unknown_step_stops_the_walk_and_keeps_the_rest() -> None:
    conf = search.pod_resolv_conf("ns", node_search=["ec2.internal"])

    def ask(qname: str, qtype: int) -> Outcome:
        if qname.endswith("cluster.local."):
            return Outcome(NXDOMAIN)
        return Outcome(None, unknown=True)

    walk = run(Walk(conf, "api.github.com", GLIBC), ask)
    assert walk.result is not None and walk.result.status == "unknown"
    assert walk.steps[-1][0].name == "api.github.com.ec2.internal."
    assert [c.name for c in walk.remaining] == ["api.github.com."]
    assert walk.wasted == 6


def test_advice_for_an_external_name() -> None:
    conf = search.pod_resolv_conf("testns")
    walk = run(Walk(conf, "www.example.test", GLIBC), real_server(GLIBC))
    assert (walk.queries_sent, walk.wasted) == (8, 6)
    advice = {a.kind: a for a in advise(walk, autopath=False)}
    assert set(advice) == {"fqdn", "ndots", "autopath", "nodelocal"}
    assert "www.example.test." in advice["fqdn"].text
    assert advice["ndots"].snippet == (
        'spec:\n  dnsConfig:\n    options:\n    - name: ndots\n      value: "2"\n'
    )
    assert "autopath" not in {a.kind for a in advise(walk, autopath=True)}


def test_advice_for_a_cluster_name_and_for_no_waste() -> None:
    conf = search.pod_resolv_conf("testns")
    walk = run(Walk(conf, "kubedns.kube-system", GLIBC), real_server(GLIBC))
    kinds = {a.kind for a in advise(walk, autopath=None)}
    assert kinds == {"fqdn", "autopath"}  # in-cluster: no ndots change, no node cache advice
    walk = run(Walk(conf, "svc1", GLIBC), real_server(GLIBC))
    assert [a.kind for a in advise(walk)] == ["ok"]
    walk = run(Walk(conf, "www.example.test.", GLIBC), real_server(GLIBC))
    assert [a.kind for a in advise(walk)] == ["ok"]


def test_no_ndots_advice_for_a_name_that_exists_nowhere() -> None:
    # With ndots:1 glibc tries kubernetes.default. first and then the whole search list all the
    # same (4 steps either way): the advice would save nothing; the name is what is wrong.
    conf = search.pod_resolv_conf("testns")
    for resolver in (GLIBC, MUSL):
        walk = run(Walk(conf, "kubernetes.default", resolver), real_server(resolver))
        assert walk.result is not None and walk.result.status == "nxdomain"
        assert "ndots" not in {a.kind for a in advise(walk)}


def test_advice_for_musl_truncation() -> None:
    conf = search.pod_resolv_conf("testns")
    walk = run(Walk(conf, "big.interwebs.test.", MUSL), real_server(MUSL))
    assert [a.kind for a in advise(walk)] == ["truncated"]


NAMESPACES = {"default", "testns", "kube-system"}
SERVICES = {("testns", "svc1"), ("default", "kubernetes")}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("www.google.com.default.svc", ("namespace", "default")),
        ("a.b.c.d.testns.svc", ("namespace", "testns")),
        ("kubedns.kube-system.testns.svc", ("namespace", "testns")),
        ("www.google.com.svc", ("svc", "")),
        ("svc0.svc", ("svc", "")),
        ("www.google.com", ("zone", "")),
        ("svc0.testns.svc", None),  # a missing service, not an expansion
        ("ep1.svc1.testns.svc", None),  # a missing endpoint of a real service
        ("_http._tcp.svc1.testns.svc", None),
        ("_http._tcp.nosvc.testns.svc", ("namespace", "testns")),
        ("testns.svc", None),
        ("1-2-3-4.testns.pod", None),
        ("dns-version", None),
    ],
)
def test_expansion_classifier(name: str, expected: tuple[str, str] | None) -> None:
    got = search.expansion(
        name.split("."), lambda ns: ns in NAMESPACES, lambda ns, s: (ns, s) in SERVICES
    )
    assert got == expected


def test_every_resolv_conf_reader_skips_comments_the_same_way() -> None:
    text = "# generated\nnameserver 10.96.0.10 ; cluster DNS\n\nsearch a.svc b # node\n"
    assert list(search.resolv_lines(text)) == [
        (2, "nameserver", ["10.96.0.10"]),
        (4, "search", ["a.svc", "b"]),
    ]
    assert search.parse_resolv_conf(text).search == ("a.svc.", "b.")

"""`rewrite name` as a handler: CoreDNS's name_test.go tables (the rules it accepts, the name
the next plugin is asked, the owner name the client gets back), `answer auto` on names and
values below the rewritten name, `answer value`, and the mapping `answer auto` reverts with."""

from __future__ import annotations

import pytest

from kdns.corefile import CorefileError
from kdns.dns import names
from kdns.dns.message import Reply
from kdns.dns.records import RR, SRV, cname, rdata_text, srv
from kdns.plugins.rewrite import RewritePlugin
from kdns.plugins.rewrite.answers import remap
from tests.support.plugins import Recorder, context, parse_directive, request


def plugin(*lines: str) -> RewritePlugin:
    return RewritePlugin(parse_directive("\n".join(lines), "rewrite"), context())


def owners(reply: Reply) -> list[str]:
    return [r.name for r in reply.answer]


def refused(text: str) -> bool:
    with pytest.raises(CorefileError, match=r"^Corefile:\d+: "):
        parse_directive(text, "rewrite")
    return True


# name_test.go TestNewNameRule: (arguments after `rewrite stop name`, accepted).
SG, CR = "staging.mydomain.com", r"(.*).coredns.rock"
CR_ = "coredns.rocks."
NEW_NAME_RULE = [
    ("exact srv3.coredns.rocks srv4.coredns.rocks", True),
    ("srv1.coredns.rocks srv2.coredns.rocks", True),
    ("suffix coredns.rocks coredns.rocks.", True),
    ("suffix coredns.rocks. coredns.rocks", True),
    ("regex srv1.coredns.rocks 10", True),
    ("regex (.*).coredns.rocks {1}.coredns.rocks", True),
    ("regex (.*).coredns.rocks {1}.{2}.coredns.rocks", False),
    (f"regex {SG} aws-loadbalancer-id.us-east-1.elb.amazonaws.com", True),
    (f"suffix {SG} coredns.rock answer", False),
    (f"suffix {SG} coredns.rock answer name", False),
    (f"suffix {SG} coredns.rock answer other", False),
    (f"suffix {SG} coredns.rock answer auto", True),
    (f"regex {SG} coredns.rock answer auto", True),
    (f"regex {SG} coredns.rock answer name", False),
    (f"regex {SG} coredns.rock answer name coredns.rock {SG}", True),
    (f"regex {SG} coredns.rock answer name {CR} {{1}}.{{2}}.{SG}", False),
    (f"regex {SG} coredns.rock answer name {CR} {{1}}.{SG} name {CR} {{1}}.{SG}", True),
    (f"regex {SG} coredns.rock answer name {CR} {{1}}.{SG} answer name {CR} {{1}}.{SG}", True),
    (f"regex {SG} coredns.rock answer name {CR} {{1}}.{SG} name {CR}", False),
    (f"regex {SG} coredns.rock answer name {CR} {{1}}.{SG} value {CR} {{1}}.{SG}", True),
    (f"regex {SG} coredns.rock answer name {CR} {{1}}.{SG} value {CR}", False),
    (f"suffix {SG}. coredns.rock. answer value {CR} {{1}}.{SG} name {CR} {{1}}.{SG}", True),
    (f"suffix {SG}. coredns.rock. answer value {CR} {{1}}.{SG} value {CR}", False),
]


@pytest.mark.parametrize(("args", "accepted"), NEW_NAME_RULE)
def test_new_name_rule_table(args: str, accepted: bool) -> None:
    if accepted:
        assert parse_directive(f"rewrite stop name {args}", "rewrite")
    else:
        assert refused(f"rewrite stop name {args}")


# name_test.go: the rule, the name asked, the name the next plugin gets, the answer's owner.
@pytest.mark.parametrize(
    ("args", "qname", "asked", "owner"),
    [
        ("prefix foo bar", "foo.example.com.", "bar.example.com.", "bar.example.com."),
        ("prefix foo. bar.", "foo.example.com.", "bar.example.com.", "bar.example.com."),
        ("suffix com org", "foo.example.com.", "foo.example.org.", "foo.example.org."),
        ("suffix .com .org", "foo.example.com.", "foo.example.org.", "foo.example.org."),
        ("prefix foo bar", "coredns.foo.", "coredns.foo.", "coredns.foo."),
        ("suffix com org.", "com.coredns.", "com.coredns.", "com.coredns."),
        ("substring service svc", "com.coredns.", "com.coredns.", "com.coredns."),
        (
            "suffix .ingress.coredns.rocks nginx.coredns.rocks",
            "coredns.ingress.coredns.rocks.",
            "corednsnginx.coredns.rocks.",
            "corednsnginx.coredns.rocks.",
        ),
        ("prefix foo bar answer auto", "foo.example.com.", "bar.example.com.", "foo.example.com."),
        ("suffix com org answer auto", "foo.example.com.", "foo.example.org.", "foo.example.com."),
        (
            "suffix .ingress.coredns.rocks nginx.coredns.rocks answer auto",
            "coredns.ingress.coredns.rocks.",
            "corednsnginx.coredns.rocks.",
            "coredns.ingress.coredns.rocks.",
        ),
        (
            "exact coredns.rocks service.consul",
            "coredns.rocks.",
            "service.consul.",
            "coredns.rocks.",
        ),
        (
            "exact coredns.org. service.consul.",
            "coredns.rocks.",
            "coredns.rocks.",
            "coredns.rocks.",
        ),
        (
            "regex (.*).coredns.rocks {1}.coredns.maps answer auto",
            "foo.coredns.rocks.",
            "foo.coredns.maps.",
            "foo.coredns.rocks.",
        ),
        (
            "regex (.*).coredns.rocks {1}.coredns.maps answer name (.*).coredns.maps "
            "{1}.coredns.works",
            "foo.coredns.rocks.",
            "foo.coredns.maps.",
            "foo.coredns.works.",
        ),
        (
            "regex (.*).coredns.rocks {1}.coredns.maps",
            "foo.coredns.rocks.",
            "foo.coredns.maps.",
            "foo.coredns.maps.",
        ),
    ],
)
async def test_name_rewrite_and_answer_table(args: str, qname: str, asked: str, owner: str) -> None:
    nxt = Recorder()
    reply = await plugin(f"rewrite stop name {args}")(request(qname), nxt)
    assert nxt.seen[0].name == asked
    assert owners(reply) == [owner]


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("example.com.", "example.org."),
        ("sub.example.com.", "sub.example.org."),
        ("a.b.example.com.", "a.b.example.org."),
        ("notexample.com.", "notexample.com."),  # same suffix, not on a label boundary
        (".example.com.", ".example.org."),
        ("example.net.", "example.net."),
        ("com.", "com."),
        ("", ""),
    ],
)
def test_remap_of_answer_auto(src: str, want: str) -> None:
    assert remap("example.com.", "example.org.")(src) == want


async def test_answer_auto_maps_names_and_values_below_the_rewritten_name() -> None:
    p = plugin("rewrite name suffix .example.com. .svc.cluster.local. answer auto")
    target = names.to_wire("db-0.db.shop.svc.cluster.local.")
    answer = (
        cname("db.shop.svc.cluster.local.", 30, "db-0.db.shop.svc.cluster.local."),
        RR("_pg._tcp.db.shop.svc.cluster.local.", SRV, 30, b"\0\0\0\0\x15\x38" + target),
    )
    reply = await p(request("db.shop.example.com."), Recorder(answer))
    assert owners(reply) == ["db.shop.example.com.", "_pg._tcp.db.shop.example.com."]
    assert rdata_text(reply.answer[0]) == "db-0.db.shop.example.com."
    assert rdata_text(reply.answer[1]) == "0 0 5432 db-0.db.shop.example.com."


async def test_answer_value_rewrites_targets_only() -> None:
    p = plugin(
        r"rewrite name regex (.*)\.corp\. {1}.svc.cluster.local. "
        r"answer value (.*)\.svc\.cluster\.local\. {1}.corp."
    )
    answer = (
        cname("web.shop.svc.cluster.local.", 5, "lb.shop.svc.cluster.local."),
        srv("web.shop.svc.cluster.local.", 5, 0, 0, 80, "lb.shop.svc.cluster.local."),
    )
    reply = await p(request("web.shop.corp."), Recorder(answer))
    assert owners(reply) == ["web.shop.svc.cluster.local."] * 2
    assert [rdata_text(r) for r in reply.answer] == ["lb.shop.corp.", "0 0 80 lb.shop.corp."]


async def test_exact_rules_always_map_back_and_prefix_only_with_auto() -> None:
    exact = await plugin("rewrite name exact a.example. b.example.")(
        request("A.Example."), Recorder()
    )
    assert owners(exact) == ["a.example."]
    plain = await plugin("rewrite name prefix www api")(request("www.example."), Recorder())
    assert owners(plain) == ["api.example."]

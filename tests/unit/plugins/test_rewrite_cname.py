"""`rewrite cname` as a handler: CoreDNS's cname_target_test.go table (a CNAME target swapped,
the new target's records looked up through the whole server), and what it tells the fast path."""

from __future__ import annotations

import pytest

from kdns.dns.message import NOERROR, Reply, Request
from kdns.dns.records import AAAA, RR, A, address, cname, rdata_text, type_name
from kdns.plugins import memo
from kdns.plugins.rewrite import RewritePlugin
from tests.support.plugins import Recorder, context, parse_directive, request

RULES = (
    "rewrite continue cname exact def.example.com. xyz.example.com.",
    "rewrite continue cname prefix chat.openai.com bard.google.com",
    "rewrite continue cname suffix uvw. xyz.",
    "rewrite continue cname substring efgh zzzz.www",
    r"rewrite continue cname regex (.*)\.web\.(.*)\.site\. {1}.webapp.{2}.org.",
)

# CoreDNS's MockedUpstream: what the whole server answers for the new targets.
UPSTREAM = {
    ("xyz.example.com.", A): ["xyz.example.com. 3600 A 3.4.5.6"],
    ("xyz.example.com.", AAAA): ["xyz.example.com. 3600 AAAA 3a01:7e00::f03c:91ff:fe79:234c"],
    ("bard.google.com.cdn.cloudflare.net.", A): [
        "bard.google.com.cdn.cloudflare.net. 1800 A 9.7.2.1"
    ],
    ("www.hosting.xyz.", A): ["www.hosting.xyz. 500 A 20.30.40.50"],
    ("abcd.zzzz.www.pqrst.", A): [
        "abcd.zzzz.www.pqrst. 120 A 101.20.5.1",
        "abcd.zzzz.www.pqrst. 120 A 101.20.5.2",
    ],
    ("orders.webapp.eu.org.", A): ["orders.webapp.eu.org. 120 A 20.0.0.9"],
}


def record(text: str) -> RR:
    """`NAME TTL TYPE DATA` (CNAME, A or AAAA) as a record."""
    name, ttl, rtype, data = text.split()
    make = cname if rtype == "CNAME" else address
    return make(name, int(ttl), data)


def shown(reply: Reply) -> list[str]:
    return [f"{r.name} {r.ttl} {type_name(r.rtype)} {rdata_text(r)}" for r in reply.answer]


async def lookup(req: Request) -> Reply:
    return Reply(NOERROR, tuple(record(t) for t in UPSTREAM.get((req.name, req.qtype), [])))


def plugin() -> RewritePlugin:
    return RewritePlugin(parse_directive("\n".join(RULES), "rewrite"), context(lookup=lookup))


@pytest.mark.parametrize(
    ("qname", "qtype", "answer", "want"),
    [
        (
            "abc.example.com.",
            "A",
            ["abc.example.com. 5 CNAME def.example.com.", "def.example.com. 5 A 1.2.3.4"],
            ["abc.example.com. 5 CNAME xyz.example.com.", "xyz.example.com. 3600 A 3.4.5.6"],
        ),
        (
            "abc.example.com.",
            "AAAA",
            [
                "abc.example.com. 5 CNAME def.example.com.",
                "def.example.com. 5 AAAA 2a01:7e00::f03c:91ff:fe79:234c",
            ],
            [
                "abc.example.com. 5 CNAME xyz.example.com.",
                "xyz.example.com. 3600 AAAA 3a01:7e00::f03c:91ff:fe79:234c",
            ],
        ),
        (
            "chat.openai.com.",
            "A",
            [
                "chat.openai.com. 20 CNAME chat.openai.com.cdn.cloudflare.net.",
                "chat.openai.com.cdn.cloudflare.net. 30 A 23.2.1.2",
                "chat.openai.com.cdn.cloudflare.net. 30 A 24.6.0.8",
            ],
            [
                "chat.openai.com. 20 CNAME bard.google.com.cdn.cloudflare.net.",
                "bard.google.com.cdn.cloudflare.net. 1800 A 9.7.2.1",
            ],
        ),
        (
            "coredns.io.",
            "A",
            ["coredns.io. 100 CNAME www.hosting.uvw.", "www.hosting.uvw. 200 A 7.2.3.4"],
            ["coredns.io. 100 CNAME www.hosting.xyz.", "www.hosting.xyz. 500 A 20.30.40.50"],
        ),
        (
            "core.dns.rocks.",
            "A",
            ["core.dns.rocks. 200 CNAME abcd.efgh.pqrst.", "abcd.efgh.pqrst. 100 A 200.30.45.67"],
            [
                "core.dns.rocks. 200 CNAME abcd.zzzz.www.pqrst.",
                "abcd.zzzz.www.pqrst. 120 A 101.20.5.1",
                "abcd.zzzz.www.pqrst. 120 A 101.20.5.2",
            ],
        ),
        (
            "order.service.eu.",
            "A",
            [
                "order.service.eu. 200 CNAME orders.web.eu.site.",
                "orders.web.eu.site. 50 A 10.10.15.1",
            ],
            [
                "order.service.eu. 200 CNAME orders.webapp.eu.org.",
                "orders.webapp.eu.org. 120 A 20.0.0.9",
            ],
        ),
    ],
)
async def test_cname_target_table(
    qname: str, qtype: str, answer: list[str], want: list[str]
) -> None:
    token = memo.current.set(memo.Memo())
    try:
        reply = await plugin()(request(qname, qtype), Recorder(tuple(record(t) for t in answer)))
        assert memo.get().denied  # type: ignore[union-attr]  # the lookup has its own lifetime
    finally:
        memo.current.reset(token)
    assert shown(reply) == want


async def test_a_reply_without_a_matching_cname_is_left_alone() -> None:
    token = memo.current.set(memo.Memo())
    try:
        reply = await plugin()(request("plain.example."), Recorder())
        assert not memo.get().denied  # type: ignore[union-attr]
    finally:
        memo.current.reset(token)
    assert shown(reply) == ["plain.example. 300 A 127.0.0.1"]


async def test_a_cname_rule_in_stop_mode_ends_the_rule_list() -> None:
    p = RewritePlugin(
        parse_directive("rewrite cname a. b.\nrewrite name x.example. y.example.", "rewrite"),
        context(lookup=lookup),
    )
    nxt = Recorder()
    await p(request("x.example."), nxt)
    assert nxt.seen[0].name == "x.example."  # the cname rule applies to every question

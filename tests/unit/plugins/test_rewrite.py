"""`rewrite` as a handler: CoreDNS's rewrite_test.go, name_test.go, ttl_test.go and rcode_test.go
tables (rules read from Corefile lines, requests and replies checked), continue/stop, replies
mapped back, what it tells the fast path, and the forms refused with file:line. The EDNS0 rules
are in test_rewrite_edns0.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kdns.corefile import CorefileError
from kdns.dns import names
from kdns.dns.message import FORMERR, NOERROR, NXDOMAIN, SERVFAIL, Reply
from kdns.dns.records import ANY, HINFO, A, a
from kdns.plugins import memo
from kdns.plugins.rewrite import RewritePlugin
from tests.support.plugins import Recorder, context, parse_directive, request

IN, CH, HS = 1, 3, 4


def plugin(*lines: str) -> RewritePlugin:
    return RewritePlugin(parse_directive("\n".join(lines), "rewrite"), context())


def refusal(text: str) -> str:
    with pytest.raises(CorefileError) as info:
        parse_directive(text, "rewrite")
    assert str(info.value).startswith("Corefile:"), info.value
    return str(info.value)


def owners(reply: Reply) -> list[str]:
    return [r.name for r in reply.answer]


# CoreDNS plugin/rewrite/rewrite_test.go TestNewRule: (arguments after `rewrite`, accepted).
# Two rows are left out: their patterns hold bytes that are not UTF-8, which Go's regexp
# refuses and a Corefile (read as text) cannot hold.
NEW_RULE = [
    ("", False),
    ("foo", False),
    ("name", False),
    ("name a.com", False),
    ("name a.com b.com c.com", False),
    ("name a.com b.com", True),
    ("name exact a.com b.com", True),
    ("name prefix a.com b.com", True),
    ("name suffix a.com b.com", True),
    ("name suffix foo3.bar google.com answer name g(o+)gle(.*) f{1}{2}", True),
    ("name substring a.com b.com", True),
    (r"name regex ([a])\.com new-{1}.com", True),
    (r"name regex ([a]\.com new-{1}.com", False),
    (
        r"name regex (dns)\.(core)\.(rocks) {2}.{1}.{3}"
        + r" answer name (core)\.(dns)\.(rocks) {2}.{1}.{3}",
        True,
    ),
    (
        r"name regex (adns)\.(core)\.(rocks) {2}.{1}.{3}"
        + r" answer name (core)\.(adns)\.(rocks) {2}.{1}.{3} too.long way.too.long",
        False,
    ),
    (
        r"name regex (bdns)\.(core)\.(rocks) {2}.{1}.{3}"
        + r" NoAnswer name (core)\.(bdns)\.(rocks) {2}.{1}.{3}",
        False,
    ),
    (
        r"name regex (cdns)\.(core)\.(rocks) {2}.{1}.{3}"
        + r" answer ttl (core)\.(cdns)\.(rocks) {2}.{1}.{3}",
        False,
    ),
    (
        r"name substring fcore.dns.rocks dns.fcore.rocks"
        + r" answer name (fcore)\.(dns)\.(rocks) {2}.{1}.{3}",
        True,
    ),
    ("name substring a.com b.com c.com", False),
    ("type", False),
    ("type a", False),
    ("type any a a", False),
    ("type any a", True),
    ("type XY WV", False),
    ("type ANY WV", False),
    ("class", False),
    ("class IN", False),
    ("class ch in in", False),
    ("class ch in", True),
    ("class XY WV", False),
    ("class IN WV", False),
    ("edns0", False),
    ("edns0 local", False),
    ("edns0 local set", False),
    ("edns0 local set 0xffee", False),
    ("edns0 local set 65518 abcdefg", True),
    ("edns0 local set 0xffee abcdefg", True),
    ("edns0 local append 0xffee abcdefg", True),
    ("edns0 local replace 0xffee abcdefg", True),
    ("edns0 local foo 0xffee abcdefg", False),
    ("edns0 local set 0xffee 0xabcdefg", False),
    ("edns0 nsid set junk", False),
    ("edns0 nsid set", True),
    ("edns0 nsid append", True),
    ("edns0 nsid replace", True),
    ("edns0 nsid foo", False),
    ("edns0 local set 0xffee {dummy}", False),
    *[
        (f"edns0 local {action} 0xffee {{{var}}}", True)
        for action in ("set", "append", "replace")
        for var in ("qname", "qtype", "client_ip", "client_port", "protocol", "server_ip")
    ],
    ("edns0 local append 0xffee {server_port}", True),
    ("edns0 local replace 0xffee {dummy}", False),
    ("edns0 subnet set -1 56", False),
    ("edns0 subnet set 24 -56", False),
    ("edns0 subnet set 33 56", False),
    ("edns0 subnet set 24 129", False),
    ("edns0 subnet set 24 56", True),
    ("edns0 subnet append 24 56", True),
    ("edns0 subnet replace 24 56", True),
    ("unknown-action name a.com b.com", False),
    ("stop name a.com b.com", True),
    ("continue name a.com b.com", True),
    ("unknown-action type any a", False),
    ("stop type any a", True),
    ("continue type any a", True),
    ("unknown-action class ch in", False),
    ("stop class ch in", True),
    ("continue class ch in", True),
    ("unknown-action edns0 local set 0xffee abcedef", False),
    ("stop edns0 local set 0xffee abcdefg", True),
    ("continue edns0 local set 0xffee abcdefg", True),
    ("unknown-action edns0 nsid set", False),
    ("stop edns0 nsid set", True),
    ("continue edns0 nsid set", True),
    ("stop edns0 local set 0xffee {qname}", True),
    ("continue edns0 local set 0xffee {server_port}", True),
    ("unknown-action edns0 subnet set 24 64", False),
    ("stop edns0 subnet set 24 56", True),
    ("continue edns0 subnet replace 24 56", True),
]

# ttl_test.go TestNewTTLRule and rcode_test.go TestNewRCodeRule, each with `stop` and
# `continue`; `-1` is the TTL range 0-1 since CoreDNS reads ranges.
TTL_RULES = [
    ("srv1.coredns.rocks 10", True),
    ("exact srv1.coredns.rocks 15", True),
    ("prefix coredns.rocks 20", True),
    ("suffix srv1 25", True),
    ("substring coredns 30", True),
    (r"regex (srv1)\.(coredns)\.(rocks) 35", True),
    ("srv1.coredns.rocks 12345678901234567890", False),
    ("srv1.coredns.rocks coredns.rocks", False),
    ("srv1.coredns.rocks 10-20", True),
    ("srv1.coredns.rocks 10-", True),
    ("srv1.coredns.rocks -1", True),
    ("srv1.coredns.rocks -", False),
    ("srv1.coredns.rocks 20-10", False),
    ("fuzzy srv1.coredns.rocks 10", False),
    ("exact srv1.coredns.rocks 10 20", False),
]
RCODE_RULES = [
    ("numeric.rcode.coredns.rocks 2 0", True),
    ("too.few.rcode.coredns.rocks 2", False),
    ("exact too.many.rcode.coredns.rocks 2 1 0", False),
    ("exact match.string.rcode.coredns.rocks SERVFAIL NOERROR", True),
    (r"regex (regex)\.rcode\.(coredns)\.(rocks) FORMERR NOERROR", True),
    ("invalid.rcode.coredns.rocks random nothing", False),
    ("big.rcode.coredns.rocks 24 0", False),
]


@pytest.mark.parametrize(("args", "accepted"), NEW_RULE)
def test_new_rule_table(args: str, accepted: bool) -> None:
    if accepted:
        assert parse_directive(f"rewrite {args}", "rewrite")
    else:
        refusal(f"rewrite {args}")


@pytest.mark.parametrize("mode", ["stop", "continue"])
@pytest.mark.parametrize(("field", "args", "accepted"), [
    *(("ttl", a, ok) for a, ok in TTL_RULES),
    *(("rcode", a, ok) for a, ok in RCODE_RULES),
])  # fmt: skip
def test_ttl_and_rcode_rule_tables(mode: str, field: str, args: str, accepted: bool) -> None:
    if accepted:
        assert parse_directive(f"rewrite {mode} {field} {args}", "rewrite")
    else:
        refusal(f"rewrite {mode} {field} {args}")


def test_refusals_say_what_is_wrong_and_where() -> None:
    block = "rewrite stop {\n    name regex foo bar\n    answer name bar foo\n    name baz\n}"
    assert refusal(block).startswith("Corefile:5: name answer rule for regex rule: 2 arguments")
    swapped = "rewrite stop {\n    answer name bar foo\n    name regex foo bar\n}"
    assert "must begin with a name rule" in refusal(swapped)
    assert refusal("rewrite name regex (.*\\.example {1}.x").startswith(
        "Corefile:2: invalid regex matching pattern: (.*\\.example"
    )
    assert "more subexpressions" in refusal("rewrite name regex foo {1}.bar")
    assert "received: stop" in refusal("rewrite name stop a.tld b.svc.cluster.local")
    assert "rewrite stop name" in refusal("rewrite name stop a.tld b.svc.cluster.local")
    assert "invalid rule type 'foo'" in refusal("rewrite foo a b")
    assert "unknown cname rewrite type" in refusal("rewrite cname fuzzy a. b.")
    assert "for a cname rule" in refusal("rewrite cname a.")
    assert "only as `rewrite [continue|stop] { ... }`" in refusal("rewrite name a b {\n  x\n}")
    assert "cannot be combined" in refusal(
        "rewrite name regex (.*)\\.a {1}.b answer auto answer name (.*)\\.b {1}.a"
    )
    assert "too long" in refusal(f"rewrite name regex {'a' * 10001} b")


def test_several_lines_make_one_plugin_with_rules_in_order() -> None:
    p = plugin("rewrite name a.com b.com", "rewrite continue type ANY HINFO", "rewrite class CH IN")
    assert len(p.rules) == 3
    assert p.classes == frozenset({CH})


# rewrite_test.go TestRewrite: the rules, then (asked name, type, class) -> what the next
# plugin was asked, and the owner name of the answer the client gets.
REWRITE_RULES = (
    "rewrite stop name from.nl. to.nl.",
    r"rewrite stop name regex (core)\.(dns)\.(rocks)\.(nl) {2}.{1}.{3}.{4} "
    r"answer name (dns)\.(core)\.(rocks)\.(nl) {2}.{1}.{3}.{4}",
    "rewrite stop name exact from.exact.nl. to.nl.",
    "rewrite stop name prefix prefix to answer auto",
    "rewrite stop name suffix .suffix. .nl. answer auto",
    "rewrite stop name substring from.substring to answer auto",
    r"rewrite stop name regex (f.*m)\.regex\.(nl) to.{2} answer auto",
    r"rewrite continue name regex consul\.(rocks) core.dns.{1}",
    "rewrite stop name core.dns.rocks to.nl.",
    "rewrite continue class HS CH",
    "rewrite stop class CH IN",
    "rewrite stop type ANY HINFO",
)
REWRITES = [
    ("from.nl.", A, IN, "to.nl.", A, IN, "from.nl."),
    ("a.nl.", A, IN, "a.nl.", A, IN, "a.nl."),
    ("a.nl.", A, CH, "a.nl.", A, IN, "a.nl."),
    ("a.nl.", ANY, IN, "a.nl.", HINFO, IN, "a.nl."),
    ("from.nl.", ANY, IN, "to.nl.", ANY, IN, "from.nl."),  # name rewritten, type not (stop)
    ("from.exact.nl.", A, IN, "to.nl.", A, IN, "from.exact.nl."),
    ("prefix.nl.", A, IN, "to.nl.", A, IN, "prefix.nl."),
    ("to.suffix.", A, IN, "to.nl.", A, IN, "to.suffix."),
    ("from.substring.nl.", A, IN, "to.nl.", A, IN, "from.substring.nl."),
    ("from.regex.nl.", A, IN, "to.nl.", A, IN, "from.regex.nl."),
    # The exact rule maps back its own rewrite; the regex rule before it has no answer rule.
    ("consul.rocks.", A, IN, "to.nl.", A, IN, "core.dns.rocks."),
    ("a.nl.", ANY, CH, "a.nl.", ANY, IN, "a.nl."),  # class is the earlier rule
    ("a.nl.", ANY, HS, "a.nl.", ANY, IN, "a.nl."),  # HS -> CH (continue), CH -> IN
    ("core.dns.rocks.nl.", A, IN, "dns.core.rocks.nl.", A, IN, "core.dns.rocks.nl."),
]


@pytest.mark.parametrize(("qname", "qtype", "qclass", "to", "to_t", "to_c", "owner"), REWRITES)
async def test_rewrite_table(
    qname: str, qtype: int, qclass: int, to: str, to_t: int, to_c: int, owner: str
) -> None:
    p = plugin(*REWRITE_RULES)
    nxt = Recorder()
    reply = await p(replace(request(qname), qtype=qtype, qclass=qclass), nxt)
    (seen,) = nxt.seen
    assert (seen.name, seen.qtype, seen.qclass) == (to, to_t, to_c)
    assert seen.qname_wire == names.to_wire(to)
    assert owners(reply) == [owner]


async def test_an_invalid_name_after_rewrite_is_a_servfail_and_not_asked_on() -> None:
    p = plugin(r"rewrite name regex (.*)\.x\. {1}{1}{1}{1}{1}.y.")
    nxt = Recorder()
    token = memo.current.set(memo.Memo())
    try:
        reply = await p(request(f"{'a' * 20}.x."), nxt)
        assert memo.get().denied  # type: ignore[union-attr]
    finally:
        memo.current.reset(token)
    assert reply.rcode == SERVFAIL and "invalid name after rewrite" in reply.error
    assert nxt.seen == []


async def test_continue_applies_every_matching_rule_and_stop_ends_the_list() -> None:
    p = plugin(
        "rewrite continue name a.example. b.example.",
        "rewrite stop name b.example. c.example.",
        "rewrite name c.example. d.example.",
    )
    nxt = Recorder()
    reply = await p(request("a.example."), nxt)
    assert nxt.seen[0].name == "c.example."
    assert owners(reply) == ["a.example."]  # both exact rules undone, last first


@pytest.mark.parametrize(
    ("qname", "qtype", "ttl"),
    [
        ("srv1.coredns.rocks.", "A", 1),
        ("srv15.coredns.rocks.", "A", 15),
        ("srv30.coredns.rocks.", "A", 30),
        ("srv45.coredns.rocks.", "A", 45),
        ("srv50.coredns.rocks.", "A", 50),
        ("srv10.coredns.rocks.", "A", 10),
        ("xmpp.coredns.rocks.", "SRV", 5),
        ("srv15.coredns.rocks.", "HINFO", 15),
        ("srv20.coredns.rocks.", "A", 20),
        ("low.range.rocks.", "A", 30),
        ("high.range.rocks.", "A", 60),
    ],
)
async def test_ttl_rewrite_table(qname: str, qtype: str, ttl: int) -> None:
    p = plugin(
        "rewrite stop ttl srv1.coredns.rocks 1",
        "rewrite stop ttl exact srv15.coredns.rocks 15",
        "rewrite stop ttl prefix srv30 30",
        "rewrite stop ttl suffix 45.coredns.rocks 45",
        "rewrite stop ttl substring rv50 50",
        r"rewrite stop ttl regex (srv10)\.(coredns)\.(rocks) 10",
        r"rewrite stop ttl regex (srv20)\.(coredns)\.(rocks) 20",
        "rewrite stop ttl suffix range.rocks 30-60",
    )
    original = 5 if not qname.startswith("high") else 3600
    answer = tuple(a(qname, original, f"10.0.0.{i}") for i in (1, 2))
    reply = await p(request(qname, qtype), Recorder(answer))
    assert [r.ttl for r in reply.answer] == [ttl, ttl]


@pytest.mark.parametrize("mode", ["stop", "continue"])
@pytest.mark.parametrize("old", [FORMERR, SERVFAIL, 5, 4])
async def test_rcode_rewrite_of_a_reply_without_records(mode: str, old: int) -> None:
    name = {FORMERR: "FORMERR", SERVFAIL: "SERVFAIL", 5: "REFUSED", 4: "NOTIMP"}[old]
    p = plugin(f"rewrite {mode} rcode exact srv1.coredns.rocks {name} NOERROR")
    reply = await p(request("srv1.coredns.rocks."), Recorder((), rcode=old))
    assert reply.rcode == NOERROR
    other = await p(request("srv2.coredns.rocks."), Recorder((), rcode=old))
    assert other.rcode == old


async def test_rcode_and_name_rules_match_by_name() -> None:
    p = plugin(r"rewrite continue rcode regex ^nx\. NXDOMAIN NOERROR", "rewrite name nx.a. b.a.")
    reply = await p(request("nx.a."), Recorder((), rcode=NXDOMAIN))
    assert reply.rcode == NOERROR


async def test_name_rules_leave_the_fast_path_allowed() -> None:
    p = plugin("rewrite continue name a.example. b.example.", "rewrite ttl b.example. 10")
    token = memo.current.set(memo.Memo())
    try:
        reply = await p(request("a.example."), Recorder())
        assert not memo.get().denied  # type: ignore[union-attr]
    finally:
        memo.current.reset(token)
    assert owners(reply) == ["a.example."] and reply.answer[0].ttl == 10

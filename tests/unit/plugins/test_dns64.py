"""dns64's pure parts against CoreDNS's own cases (plugin/dns64/dns64_test.go): the RFC 6052
address embedding, when a reply is translated, and the synthesized reply."""

from __future__ import annotations

import ipaddress

import pytest

from kdns.dns import records
from kdns.dns.message import NOERROR, NOTIMP, NXDOMAIN, REFUSED, Reply
from kdns.plugins import dns64

SOA70 = records.soa("example.com.", 70, "foo.", "bar.", 1, 1, 1, 1, 1)
SOA3600 = records.soa("example.com.", 3600, "foo.", "bar.", 1, 7200, 900, 1209600, 86400)


def _embed(prefix: str, ipv4: str) -> str:
    net = ipaddress.IPv6Network(prefix)
    return str(ipaddress.IPv6Address(dns64.embed(net, ipaddress.IPv4Address(ipv4).packed)))


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("64:ff9b::/96", "64:ff9b::4040:4040"),
        ("64:ff9b::/64", "64:ff9b::40:4040:4000:0"),
        ("64:ff9b::/56", "64:ff9b:0:40:40:4040::"),
        ("64::/32", "64:0:4040:4040::"),
        # RFC 6052 section 2.4's table, 192.0.2.33 in 2001:db8::/N.
        ("2001:db8::/40", "2001:db8:c0:2:21::"),
        ("2001:db8::/48", "2001:db8:0:c000:2:2100::"),
    ],
)
def test_embedding_follows_rfc_6052(prefix: str, expected: str) -> None:
    ipv4 = "64.64.64.64" if prefix.startswith("64") else "192.0.2.33"
    assert _embed(prefix, ipv4) == expected


def test_rfc_6052_examples_for_every_length() -> None:
    cases = {
        "2001:db8::/32": "2001:db8:c000:221::",
        "2001:db8:100::/40": "2001:db8:1c0:2:21::",
        "2001:db8:122::/48": "2001:db8:122:c000:2:2100::",
        "2001:db8:122:300::/56": "2001:db8:122:3c0:0:221::",
        "2001:db8:122:344::/64": "2001:db8:122:344:c0:2:2100:0",
        "2001:db8:122:344::/96": "2001:db8:122:344::192.0.2.33",
    }
    for prefix, expected in cases.items():
        assert _embed(prefix, "192.0.2.33") == str(ipaddress.IPv6Address(expected)), prefix


def _aaaa(*ips: str) -> tuple[records.RR, ...]:
    return tuple(records.aaaa("example.com.", 60, ip) for ip in ips)


@pytest.mark.parametrize(
    ("reply", "translate_all", "expected"),
    [
        (Reply(NOERROR, _aaaa("::1")), False, False),  # an AAAA is there
        (Reply(NOERROR, authority=(SOA70,)), False, True),  # NODATA
        (Reply(NOTIMP, authority=(SOA70,)), False, True),  # errors count as empty
        (Reply(NXDOMAIN, authority=(SOA70,)), False, False),  # the name does not exist
        (Reply(NOERROR, _aaaa("::1")), True, True),  # translate_all
        (Reply(NXDOMAIN, authority=(SOA70,)), True, False),
    ],
)
def test_which_replies_are_translated(reply: Reply, translate_all: bool, expected: bool) -> None:
    assert dns64.wants_translation(reply, translate_all) is expected


def _synth(aaaa: Reply, a: Reply) -> Reply:
    return dns64.synthesize(dns64.WELL_KNOWN, aaaa, a)


def _as_text(reply: Reply) -> list[tuple[str, int, str]]:
    return [(r.name, r.ttl, records.rdata_text(r)) for r in reply.answer]


def test_ttl_is_capped_by_the_soa_of_the_aaaa_reply() -> None:
    a = Reply(
        NOERROR,
        (
            records.a("example.com.", 60, "192.0.2.42"),
            records.a("example.com.", 5000, "192.0.2.43"),
        ),
    )
    out = _synth(Reply(NOERROR, authority=(SOA70,)), a)
    assert out.rcode == NOERROR and not out.aa and not out.ra and not out.tc
    assert [(r.rtype, r.ttl) for r in out.answer] == [(records.AAAA, 60), (records.AAAA, 70)]
    assert [str(ipaddress.IPv6Address(r.rdata)) for r in out.answer] == [
        "64:ff9b::c000:22a",
        "64:ff9b::c000:22b",
    ]


def test_without_soa_the_cap_is_600_and_errors_become_noerror() -> None:
    a = Reply(
        NOERROR,
        (
            records.a("example.com.", 60, "192.0.2.42"),
            records.a("example.com.", 5000, "192.0.2.43"),
        ),
    )
    out = _synth(Reply(REFUSED), a)
    assert out.rcode == NOERROR
    assert [r.ttl for r in out.answer] == [60, 600]


def test_an_empty_a_reply_passes_its_authority_on() -> None:
    out = _synth(Reply(NOERROR, authority=(SOA3600,)), Reply(NOERROR, authority=(SOA3600,)))
    assert out.rcode == NOERROR and out.answer == () and out.authority == (SOA3600,)


def test_truncation_and_other_records_pass_unchanged() -> None:
    cname = records.cname("www.example.com.", 30, "example.com.")
    a = Reply(NOERROR, (cname, records.a("example.com.", 60, "192.0.2.42")), tc=True)
    out = _synth(Reply(NOERROR, authority=(SOA70,)), a)
    assert out.tc
    assert out.answer[0] == cname
    assert out.answer[1].name == "example.com." and out.answer[1].rtype == records.AAAA

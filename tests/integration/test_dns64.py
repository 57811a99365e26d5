"""dns64 over real sockets: IPv6 and IPv4 clients (dnspython, dig) against kdns forwarding to a
fake upstream that has A records but no AAAA for some names."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import pytest
from prometheus_client import CollectorRegistry

from kdns import metrics
from kdns.corefile import CorefileError
from tests.support.client import DIG, ask, dig, rrs
from tests.support.plugins import parse_directive
from tests.support.server import running_kdns
from tests.support.upstream import FakeUpstream, fake_upstream


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_ipv6(), reason="needs IPv6 loopback (::1)")


def _records(up: FakeUpstream) -> None:
    up.add("v4only.example.", "A", "192.0.2.42", "192.0.2.43")
    up.add("dual.example.", "A", "192.0.2.1")
    up.add("dual.example.", "AAAA", "2001:db8::1")


def _corefile(up: FakeUpstream, dns64: str) -> str:
    return f".:PORT {{\n bind 127.0.0.1 ::1\n {dns64}\n forward . 127.0.0.1:{up.port}\n}}\n"


def _count(registry: CollectorRegistry, what: str = "translated") -> float:
    metrics.flush(registry)  # hits the fast path counted in batches
    return sum(
        s.value
        for family in registry.collect()
        if family.name == f"coredns_dns64_requests_{what}"
        for s in family.samples
        if s.name.endswith("_total")
    )


def _ede(msg: dns.message.Message) -> list[tuple[int, str | None]]:
    return [(o.code, o.text) for o in msg.options if isinstance(o, dns.edns.EDEOption)]


async def test_ipv6_clients_get_aaaa_made_from_a_records(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        _records(up)
        async with running_kdns(_corefile(up, "dns64"), tmp_path) as srv:
            for _ in range(3):  # later asks may be served from stored bytes: still right
                msg = await ask(srv.port, "v4only.example.", "AAAA", host="::1")
                assert msg.rcode() == dns.rcode.NOERROR
                assert sorted(rrs(msg)) == [
                    ("v4only.example.", "AAAA", "64:ff9b::c000:22a"),
                    ("v4only.example.", "AAAA", "64:ff9b::c000:22b"),
                ]
                # RFC 6147 5.1.7: the TTL is capped by the negative AAAA reply's SOA (60).
                assert msg.answer[0].ttl <= 60
                # An IPv4 client asking the same bytes gets the upstream's own answer.
                msg = await ask(srv.port, "v4only.example.", "AAAA")
                assert msg.rcode() == dns.rcode.NOERROR and not msg.answer
                assert rrs(msg, "authority")[0][1] == "SOA"
            assert _count(srv.registry) == 3
            # A name with an AAAA keeps it; a missing name stays NXDOMAIN; A is untouched.
            msg = await ask(srv.port, "dual.example.", "AAAA", host="::1")
            assert rrs(msg) == [("dual.example.", "AAAA", "2001:db8::1")]
            msg = await ask(srv.port, "nowhere.example.", "AAAA", host="::1")
            assert msg.rcode() == dns.rcode.NXDOMAIN and not msg.answer
            msg = await ask(srv.port, "v4only.example.", "A", host="::1", tcp=True)
            assert sorted(r[2] for r in rrs(msg)) == ["192.0.2.42", "192.0.2.43"]
            assert _count(srv.registry) == 3
            # Each translation asked the upstream for A through the server (forward).
            assert up.counts[("v4only.example.", "A")] >= 1


async def test_prefix_translate_all_and_allow_ipv4(tmp_path: Path) -> None:
    block = "dns64 {\n  prefix 2001:db8:122:344::/64\n  translate_all\n  allow_ipv4\n }"
    async with fake_upstream() as up:
        _records(up)
        async with running_kdns(_corefile(up, block), tmp_path) as srv:
            for host in ("127.0.0.1", "::1", "127.0.0.1"):
                msg = await ask(srv.port, "dual.example.", "AAAA", host=host)
                # translate_all: the real AAAA is replaced by the one made from the A record.
                assert rrs(msg) == [("dual.example.", "AAAA", "2001:db8:122:344:c0:2:100:0")]
                assert ipaddress.IPv6Address(msg.answer[0][0].address) in ipaddress.ip_network(
                    "2001:db8:122:344::/64"
                )
            assert _count(srv.registry) == 3


async def test_extended_error_synthesized_only_for_edns_queries(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        _records(up)
        async with running_kdns(_corefile(up, "dns64"), tmp_path) as srv:
            msg = await ask(srv.port, "v4only.example.", "AAAA", host="::1")
            assert _ede(msg) == [(29, "DNS64 synthesised this response from A records")]
            msg = await ask(srv.port, "v4only.example.", "AAAA", host="::1", edns=None)
            assert msg.edns < 0 and len(msg.answer[0]) == 2  # no OPT added
            msg = await ask(srv.port, "dual.example.", "AAAA", host="::1")
            assert _ede(msg) == []


async def test_filter_a_hides_a_records_from_eligible_clients(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        _records(up)
        async with running_kdns(_corefile(up, "dns64 {\n  filter_a\n }"), tmp_path) as srv:
            for _ in range(2):
                msg = await ask(srv.port, "v4only.example.", "A", host="::1")
                assert msg.rcode() == dns.rcode.NOERROR and not msg.answer
                # The SOA an internal SOA lookup found, for negative caching (RFC 2308).
                assert [r[:2] for r in rrs(msg, "authority")] == [("test.", "SOA")]
                assert _ede(msg) == [(17, "dns64 filter_a: A records suppressed")]
                # IPv4 clients are not eligible without allow_ipv4: they see the A records.
                msg = await ask(srv.port, "v4only.example.", "A")
                assert sorted(r[2] for r in rrs(msg)) == ["192.0.2.42", "192.0.2.43"]
            msg = await ask(srv.port, "v4only.example.", "A", host="::1", edns=None)
            assert not msg.answer and msg.edns < 0
            # Synthesis still looks A up for itself.
            msg = await ask(srv.port, "v4only.example.", "AAAA", host="::1")
            assert len(msg.answer[0]) == 2
            assert _count(srv.registry, "filtered") == 3
            assert _count(srv.registry) == 1


@pytest.mark.skipif(DIG is None, reason="dig is installed by `make test`")
async def test_dig_sees_the_synthesized_answer(tmp_path: Path) -> None:
    assert DIG is not None
    async with fake_upstream() as up:
        _records(up)
        async with running_kdns(_corefile(up, "dns64 64:1337::/96"), tmp_path) as srv:
            out = await dig(srv.port, "+short", "v4only.example.", "AAAA", host="::1")
            assert sorted(out.split()) == ["64:1337::c000:22a", "64:1337::c000:22b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dns64 64:ff9b::/52", "invalid prefix length /52"),
        ("dns64 {\n prefix 64:ff9b::/104\n}", "invalid prefix length /104"),
        ("dns64 {\n prefix 8.8.8.8/24\n}", "must be IPv6"),
        ("dns64 foobar", "invalid CIDR address 'foobar'"),
        ("dns64 64:ff9b::/96 64:ff9b::/96", "wrong number of arguments"),
        ("dns64 {\n prefix\n}", "wrong number of arguments for prefix"),
        ("dns64 {\n translate_all yes\n}", "translate_all takes no arguments"),
        ("dns64 {\n foobar\n}", "unknown property 'foobar' for dns64"),
        ("dns64 {\n filter_a on\n}", "filter_a takes no arguments"),
    ],
)
def test_misuse_is_refused_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(CorefileError, match=r"^Corefile:\d+: ") as info:
        parse_directive(text, "dns64")
    assert message in str(info.value)


def test_accepted_forms() -> None:
    assert str(parse_directive("dns64", "dns64").prefix) == "64:ff9b::/96"
    cfg = parse_directive("dns64 64:1337::/96 {\n allow_ipv4\n}", "dns64")
    assert (str(cfg.prefix), cfg.allow_ipv4, cfg.translate_all) == ("64:1337::/96", True, False)
    cfg = parse_directive("dns64 {\n prefix 2002:c0a8:a88a::/48\n translate_all\n}", "dns64")
    assert (str(cfg.prefix), cfg.translate_all) == ("2002:c0a8:a88a::/48", True)
    cfg = parse_directive("dns64 {\n allow_ipv4\n filter_a\n}", "dns64")
    assert (cfg.allow_ipv4, cfg.filter_a) == (True, True)

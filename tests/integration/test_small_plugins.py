"""chaos, whoami, any, minimal, nsid, local, bufsize over real sockets, as their READMEs show."""

from __future__ import annotations

from pathlib import Path

import dns.edns
import dns.flags
import dns.rcode
import pytest

import kdns
from kdns.config import from_text
from kdns.corefile import CorefileError
from tests.support.client import ask, rrs
from tests.support.plugins import parse_directive
from tests.support.ports import free_port
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream


async def test_chaos_answers_ch_txt_and_leaves_other_classes(tmp_path: Path) -> None:
    corefile = ".:PORT {\n bind 127.0.0.1\n chaos CoreDNS-001 info@coredns.io miek@example.org\n}\n"
    async with running_kdns(corefile, tmp_path) as srv:
        msg = await ask(srv.port, "version.bind.", "TXT", qclass="CH")
        assert msg.rcode() == dns.rcode.NOERROR
        assert [r.to_text() for r in msg.answer] == ['version.bind. 0 CH TXT "CoreDNS-001"']
        msg = await ask(srv.port, "authors.bind.", "TXT", qclass="CH")
        assert sorted(r[2] for r in rrs(msg)) == ['"info@coredns.io"', '"miek@example.org"']
        msg = await ask(srv.port, "Hostname.Bind.", "TXT", qclass="CH", tcp=True)
        assert msg.answer[0].name.to_text() == "Hostname.Bind."
        assert len(msg.answer[0]) == 1
        # An IN question for the same name is not chaos's: nothing after it answers.
        msg = await ask(srv.port, "version.bind.", "TXT")
        assert msg.rcode() == dns.rcode.SERVFAIL


async def test_classes_no_plugin_answers_are_refused(tmp_path: Path) -> None:
    corefile = (
        ".:PORT {\n bind 127.0.0.1\n local\n}\nversion.bind:PORT {\n bind 127.0.0.1\n chaos\n}\n"
    )
    async with running_kdns(corefile, tmp_path) as srv:
        msg = await ask(srv.port, "version.bind.", "TXT", qclass="CH")
        assert msg.answer[0][0].strings == (f"kdns-{kdns.__version__}".encode(),)
        # The `.` block (local only) answers IN, nothing else.
        msg = await ask(srv.port, "hostname.bind.", "TXT", qclass="CH")
        assert msg.rcode() == dns.rcode.REFUSED
        msg = await ask(srv.port, "localhost.", "A", qclass="HS")
        assert msg.rcode() == dns.rcode.REFUSED
        msg = await ask(srv.port, "localhost.", "A")
        assert rrs(msg) == [("localhost.", "A", "127.0.0.1")]


async def test_names_outside_every_zone_are_refused(tmp_path: Path) -> None:
    corefile = "example.org:PORT {\n bind 127.0.0.1\n whoami\n}\n"
    async with running_kdns(corefile, tmp_path) as srv:
        msg = await ask(srv.port, "www.example.org.", "A")
        assert msg.rcode() == dns.rcode.NOERROR
        for name in ("example.com.", "org.", "."):
            msg = await ask(srv.port, name, "A")
            assert msg.rcode() == dns.rcode.REFUSED, name
            assert not msg.answer and not msg.additional


async def test_whoami_reports_each_client(tmp_path: Path) -> None:
    async with running_kdns(".:PORT {\n bind 127.0.0.1\n whoami\n}\n", tmp_path) as srv:
        seen = set()
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            msg = await ask(srv.port, "example.org.", "A", source=source)
            assert msg.flags & dns.flags.AA and not msg.answer
            extra = {r[1]: r for r in rrs(msg, "additional")}
            assert extra["A"] == ("example.org.", "A", source)
            owner, _, srv_rdata = extra["SRV"]
            assert owner == "_udp.example.org."
            seen.add((source, srv_rdata))
        assert len(seen) == 3  # never re-served from another client's bytes
        msg = await ask(srv.port, ".", "AAAA", tcp=True)
        assert [r[0] for r in rrs(msg, "additional")] == [".", "_tcp."]


async def test_any_answers_hinfo_whatever_the_line_order(tmp_path: Path) -> None:
    # whoami comes first in the file, but any runs before it (CoreDNS's plugin.cfg order).
    corefile = ".:PORT {\n bind 127.0.0.1\n whoami\n any\n}\n"
    async with running_kdns(corefile, tmp_path) as srv:
        msg = await ask(srv.port, "example.org.", "ANY")
        assert [r.to_text() for r in msg.answer] == [
            'example.org. 8482 IN HINFO "ANY obsoleted" "See RFC 8482"'
        ]
        msg = await ask(srv.port, "example.org.", "A")
        assert not msg.answer and msg.additional  # whoami's


async def test_minimal_strips_positive_replies_only(tmp_path: Path) -> None:
    corefile = ".:PORT {\n bind 127.0.0.1\n minimal\n local\n whoami\n}\n"
    async with running_kdns(corefile, tmp_path) as srv:
        msg = await ask(srv.port, "example.org.", "A")  # whoami: a positive reply
        assert msg.rcode() == dns.rcode.NOERROR and not msg.additional and not msg.authority
        msg = await ask(srv.port, "nothing.localhost.", "A")  # NXDOMAIN keeps its SOA
        assert msg.rcode() == dns.rcode.NXDOMAIN
        assert rrs(msg, "authority")[0][:2] == ("localhost.", "SOA")
        msg = await ask(srv.port, "localhost.", "TXT")  # NODATA keeps its SOA
        assert not msg.answer and rrs(msg, "authority")[0][1] == "SOA"


async def test_nsid_only_for_clients_that_ask(tmp_path: Path) -> None:
    corefile = "example.org:PORT {\n bind 127.0.0.1\n whoami\n nsid Use The Force\n}\n"
    async with running_kdns(corefile, tmp_path) as srv:
        nsid = dns.edns.GenericOption(dns.edns.NSID, b"")
        msg = await ask(srv.port, "whoami.example.org.", "A", options=[nsid])
        found = [o for o in msg.options if o.otype == dns.edns.NSID]
        assert len(found) == 1 and found[0].to_wire() == b"Use The Force"
        msg = await ask(srv.port, "whoami.example.org.", "A")
        assert msg.edns == 0 and not msg.options


async def test_local_answers_localhost_names(tmp_path: Path) -> None:
    async with running_kdns(".:PORT {\n bind 127.0.0.1\n local\n}\n", tmp_path) as srv:
        assert rrs(await ask(srv.port, "localhost.", "A")) == [("localhost.", "A", "127.0.0.1")]
        assert rrs(await ask(srv.port, "localhost.", "AAAA")) == [("localhost.", "AAAA", "::1")]
        msg = await ask(srv.port, "LocalHost.Example.Org.", "AAAA")
        assert rrs(msg) == [("LocalHost.Example.Org.", "AAAA", "::1")]
        msg = await ask(srv.port, "1.0.0.127.in-addr.arpa.", "PTR")
        assert rrs(msg) == [("1.0.0.127.in-addr.arpa.", "PTR", "localhost.")]
        msg = await ask(srv.port, "2.0.0.127.in-addr.arpa.", "PTR")
        assert msg.rcode() == dns.rcode.NXDOMAIN
        assert rrs(msg, "authority")[0][:2] == ("127.in-addr.arpa.", "SOA")
        msg = await ask(srv.port, "0.in-addr.arpa.", "NS")
        assert rrs(msg) == [("0.in-addr.arpa.", "NS", "localhost.")]
        assert msg.answer[0].ttl == 604800
        # Names outside the local zones go on down the chain (nothing here: SERVFAIL).
        msg = await ask(srv.port, "example.org.", "A")
        assert msg.rcode() == dns.rcode.SERVFAIL
        value = srv.registry.get_sample_value("coredns_local_localhost_requests_total")
        assert value == 1.0


async def test_bufsize_caps_the_advertised_and_used_size(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("big.example.", "A", *[f"192.0.2.{i}" for i in range(1, 101)])
        corefile = (
            f".:PORT {{\n bind 127.0.0.1\n bufsize 1100\n forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            msg = await ask(srv.port, "big.example.", "A", payload=4096)
            assert msg.payload == 1100
            assert msg.flags & dns.flags.TC and len(msg.to_wire()) <= 1100
            msg = await ask(srv.port, "big.example.", "A", tcp=True, payload=4096)
            assert len(msg.answer[0]) == 100 and not msg.flags & dns.flags.TC
            msg = await ask(srv.port, "big.example.", "A", payload=1000)  # below: unaffected
            assert msg.payload == 1000


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("bufsize 100", "bufsize", "between 512 and 4096"),
        ("bufsize 1232 512", "bufsize", "wrong number of arguments"),
        ("bufsize large", "bufsize", "whole number"),
        ("any foo", "any", "takes no arguments"),
        ("whoami foo", "whoami", "takes no arguments"),
        ("minimal yes", "minimal", "takes no arguments"),
        ("minimal {\n x\n}", "minimal", "takes no block"),
        ("local foo", "local", "takes no arguments"),
        ("nsid {\n foo\n}", "nsid", "takes no block"),
        ("nsid a\nnsid b", "nsid", "only be used once"),
        ("chaos {\n x\n}", "chaos", "takes no block"),
    ],
)
def test_misuse_is_refused_with_file_and_line(text: str, name: str, message: str) -> None:
    with pytest.raises(CorefileError) as err:
        parse_directive(text, name)
    assert str(err.value).startswith("Corefile:")
    assert message in str(err.value)


def test_accepted_forms() -> None:
    assert parse_directive("bufsize", "bufsize") == 1232
    assert parse_directive("bufsize 4096", "bufsize") == 4096
    assert parse_directive("nsid Use The Force", "nsid") == b"Use The Force"
    assert parse_directive("chaos", "chaos")[0].startswith("kdns-")
    assert parse_directive("chaos v1 b a b", "chaos") == ("v1", ("a", "b"))


async def test_keys_with_different_ports_serve_one_zone_each(tmp_path: Path) -> None:
    other = free_port()
    corefile = f"a.example:PORT b.example:{other} {{\n bind 127.0.0.1\n whoami\n}}\n"
    async with running_kdns(corefile, tmp_path) as srv:
        for port, served, refused in ((srv.port, "a", "b"), (other, "b", "a")):
            msg = await ask(port, f"www.{served}.example.", "A")
            assert msg.rcode() == dns.rcode.NOERROR
            assert rrs(msg, "additional")[0] == (f"www.{served}.example.", "A", "127.0.0.1")
            msg = await ask(port, f"www.{refused}.example.", "A")
            assert msg.rcode() == dns.rcode.REFUSED


def test_a_bad_directive_in_a_block_on_two_ports_is_reported_once() -> None:
    with pytest.raises(CorefileError) as info:
        from_text("a.example:1053 b.example:1054 {\n whoami extra\n}\n", "Corefile")
    assert str(info.value).splitlines() == ["Corefile:2: whoami takes no arguments, got 'extra'"]

"""Zone files to records and lookups in a zone: the miek.nl cases of CoreDNS's file plugin
(lookup_test.go, wildcard_test.go, dname_test.go), zone file syntax as miekg/dns reads it, and
the errors it reports with their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdns.dns import records as rr
from kdns.dns import zonefile
from kdns.dns.zone import Result, Zone

MIEK = (Path(__file__).parents[2] / "data" / "zones" / "miek.nl.db").read_text()


@pytest.fixture(scope="module")
def miek() -> Zone:
    return Zone.of("miek.nl.", zonefile.parse(MIEK, "miek.nl.", "miek.nl.db"))


def show(records: tuple[rr.RR, ...]) -> list[tuple[str, str, str]]:
    return [(r.name, rr.type_name(r.rtype), rr.rdata_text(r)) for r in records]


A_MIEK = ("a.miek.nl.", "A", "139.162.196.78")


@pytest.mark.parametrize(
    ("name", "qtype", "result", "answer"),
    [
        ("www.miek.nl.", rr.A, Result.SUCCESS, [("www.miek.nl.", "CNAME", "a.miek.nl."), A_MIEK]),
        ("www.miek.nl.", rr.CNAME, Result.SUCCESS, [("www.miek.nl.", "CNAME", "a.miek.nl.")]),
        ("miek.nl.", rr.A, Result.SUCCESS, [("miek.nl.", "A", "139.162.196.78")]),
        (
            "srv.miek.nl.",
            rr.SRV,
            Result.SUCCESS,
            [("srv.miek.nl.", "SRV", "10 10 8080 a.miek.nl.")],
        ),
        ("b.miek.nl.", rr.A, Result.NXDOMAIN, []),
        ("a.miek.nl.", rr.SRV, Result.NODATA, []),
        ("txt.miek.nl.", rr.TXT, Result.SUCCESS, [("txt.miek.nl.", "TXT", '"v=spf1 a mx ~all"')]),
        # Wildcards: the record under the name asked, a CNAME followed; a name that exists
        # below the wildcard's parent is not covered; a wildcard's NODATA is a success.
        ("z.y.miek.nl.", rr.A, Result.SUCCESS, [("z.y.miek.nl.", "A", "139.162.196.78")]),
        (
            "a.x.miek.nl.",
            rr.A,
            Result.SUCCESS,
            [
                ("a.x.miek.nl.", "CNAME", "www.miek.nl."),
                ("www.miek.nl.", "CNAME", "a.miek.nl."),
                A_MIEK,
            ],
        ),
        ("b.x.miek.nl.", rr.A, Result.SUCCESS, [("b.x.miek.nl.", "CNAME", "a.miek.nl."), A_MIEK]),
        ("a.nodata.miek.nl.", rr.AAAA, Result.SUCCESS, []),
        # DNAME: the DNAME, then a CNAME synthesised under the target.
        (
            "b.dname.miek.nl.",
            rr.A,
            Result.SUCCESS,
            [
                ("dname.miek.nl.", "DNAME", "\\# 11 0178046d69656b026e6c00"),
                ("b.dname.miek.nl.", "CNAME", "b.x.miek.nl."),
                ("b.x.miek.nl.", "CNAME", "a.miek.nl."),
                A_MIEK,
            ],
        ),
    ],
)
def test_lookup_as_coredns(
    miek: Zone, name: str, qtype: int, result: Result, answer: list[tuple[str, str, str]]
) -> None:
    found = miek.lookup(name, qtype)
    assert found.result is result
    assert show(found.answer) == answer
    if result in (Result.NXDOMAIN, Result.NODATA) or not answer:
        assert show(found.authority)[0][:2] == ("miek.nl.", "SOA")
    else:
        assert {r[1] for r in show(found.authority)} == {"NS"}


def test_apex_and_additional(miek: Zone) -> None:
    soa = miek.lookup("miek.nl.", rr.SOA)
    assert show(soa.answer)[0][2].startswith("linode.atoom.net. miek.miek.nl. 1282630057 14400")
    assert len(soa.authority) == 4  # the apex NS
    ns = miek.lookup("miek.nl.", rr.NS)
    assert len(ns.answer) == 4 and not ns.authority
    mx = miek.lookup("mx.miek.nl.", rr.MX)
    assert show(mx.additional) == [A_MIEK, ("a.miek.nl.", "AAAA", "2a01:7e00::f03c:91ff:fef1:6735")]


def test_out_of_zone_cname_is_left_to_the_caller(miek: Zone) -> None:
    found = miek.lookup("ext-cname.miek.nl.", rr.A)
    assert show(found.answer) == [("ext-cname.miek.nl.", "CNAME", "example.com.")]
    assert found.chase == "example.com."


def test_delegation_and_ent() -> None:
    text = """$ORIGIN example.org.
@ 300 IN SOA ns hostmaster 1 2 3 4 5
@ IN NS ns
ns IN A 192.0.2.1
sub IN NS ns.sub
sub IN DS 1 8 2 ABCD
ns.sub IN A 192.0.2.2
a.b.c IN A 192.0.2.3
"""
    zone = Zone.of("example.org.", zonefile.parse(text, "example.org.", "db"))
    referral = zone.lookup("www.sub.example.org.", rr.A)
    assert referral.result is Result.DELEGATION and not referral.answer
    assert show(referral.authority) == [("sub.example.org.", "NS", "ns.sub.example.org.")]
    assert show(referral.additional) == [("ns.sub.example.org.", "A", "192.0.2.2")]
    # The parent side answers DS at the delegation point.
    assert zone.lookup("sub.example.org.", rr.DS).result is Result.SUCCESS
    assert zone.lookup("b.c.example.org.", rr.A).result is Result.NODATA
    assert zone.lookup("x.c.example.org.", rr.A).result is Result.NXDOMAIN


def test_transfer_order(miek: Zone) -> None:
    records = miek.transfer()
    assert records[0] == records[-1] == miek.soa
    assert [rr.type_name(r.rtype) for r in records[1:5]] == ["NS"] * 4
    assert len(records) == miek.count + 1
    assert miek.serial == 1282630057


def test_zone_file_syntax() -> None:
    text = """$TTL 1h
$ORIGIN Example.ORG.
@ IN SOA ns hostmaster ( 7 ; serial
    2h 1h 1w 5m )
www 60 in a 192.0.2.1
    IN 120 aaaa 2001:db8::1
mail IN MX 10 www
$ORIGIN sub
x IN A 192.0.2.2
$INCLUDE extra.db
y IN TXT "a b" c
"""
    records = zonefile.parse(text, "example.org.", "db", lambda name: (name, "z IN A 192.0.2.9"))
    assert [(r.name, r.ttl, rr.type_name(r.rtype), rr.rdata_text(r)) for r in records] == [
        (
            "example.org.",
            3600,
            "SOA",
            "ns.example.org. hostmaster.example.org. 7 7200 3600 604800 300",
        ),
        ("www.example.org.", 60, "A", "192.0.2.1"),
        ("www.example.org.", 120, "AAAA", "2001:db8::1"),
        ("mail.example.org.", 3600, "MX", "10 www.example.org."),
        ("x.sub.example.org.", 3600, "A", "192.0.2.2"),
        ("z.sub.example.org.", 3600, "A", "192.0.2.9"),
        ("y.sub.example.org.", 3600, "TXT", '"a b" "c"'),
    ]


def test_ttl_without_ttl_directive_is_the_last_given_else_3600() -> None:
    text = "@ IN SOA ns h 1 2 3 4 5\na IN A 192.0.2.1\nb 60 IN A 192.0.2.2\nc IN A 192.0.2.3\n"
    records = zonefile.parse(text, "example.org.", "db")
    assert [r.ttl for r in records] == [3600, 3600, 60, 60]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "@ IN SOA ns h 1 2 3 4 5\n\n; comment\nwww IN A 1.2.3\n",
            "db:4: bad A data: not an IPv4 address: '1.2.3'",
        ),
        ("@ IN SOA ns h 1 2 3 4 5\n\n# not a comment\n", "db:3: unknown record type 'not'"),
        ("www IN A 192.0.2.1\n", "db:1: no SOA record for origin example.org."),
        (
            "test IN SOA ns h 1 2 3 4 5\n",
            "db:1: SOA owner test.example.org. that does not match origin example.org.",
        ),
        ("@ IN SOA ns h ( 1 2 3 4 5\n", "db:1: unbalanced '('"),
        ("@ IN SOA ns h 1 2 3 4 5\n$INCLUDE other.db\n", "db:2: $INCLUDE is not allowed here"),
        ("@ IN SOA ns h 1 2 3 4 5\n$GENERATE 1-2 x A 1.2.3.$\n", "db:2: unknown control entry"),
        ("@ IN SOA ns h 1 2 3 4 5\nx IN HINFO a b\n", "db:2: record type HINFO is not supported"),
        ("@ 1x IN SOA ns h 1 2 3 4 5\n", "db:1: invalid TTL '1x'"),
    ],
)
def test_errors_name_the_line(text: str, error: str) -> None:
    with pytest.raises(zonefile.ZoneFileError) as caught:
        zonefile.parse(text, "example.org.", "db")
    assert str(caught.value).startswith(error)


def test_error_in_an_included_file_names_that_file() -> None:
    text = "@ IN SOA ns h 1 2 3 4 5\n$INCLUDE inc.db\n"
    with pytest.raises(zonefile.ZoneFileError, match=r"^/z/inc.db:2: bad A data"):
        zonefile.parse(
            text, "example.org.", "db", lambda n: ("/z/" + n, "a IN A 1.1.1.1\nb IN A x\n")
        )

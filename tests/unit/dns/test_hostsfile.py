"""hosts(5) text to tables: CoreDNS's hostsfile_test.go cases (from Go's net/hosts_test.go),
the wildcard entries its README documents, and the lines it skips."""

from __future__ import annotations

import ipaddress

import pytest

from kdns.dns.hostsfile import EMPTY, Table, address, parse_text

HOSTS = """255.255.255.255\tbroadcasthost
\t127.0.0.2\todin
\t127.0.0.3\todin  # inline comment
\t::2             odin
\t127.1.1.1\tthor
\t# aliases
\t127.1.1.2\tullr ullrhost
\tfe80::1%lo0\tlocalhost
\t# Bogus entries that must be ignored.
\t123.123.123\tloki
\t321.321.321.321"""
SINGLE_LINE = "127.0.0.2  odin"
# Go's net/hosts_test.go wrote these with leading zeros (127.000.000.002); Go 1.17 and Python
# both refuse those as ambiguous (octal?), so they appear here as CoreDNS now reads them.
IPV4 = """# See https://tools.ietf.org/html/rfc1123.
127.0.0.1\tlocalhost\t# inline comment separated by tab
127.0.0.2\tlocalhost       # inline comment separated by space

# internet address, host name and aliases
127.0.0.3\tlocalhost\tlocalhost.localdomain"""
IPV6 = """# See https://tools.ietf.org/html/rfc5952, https://tools.ietf.org/html/rfc4007.
::1\t\t\t\t\t\tlocalhost\t# inline comment separated by tab
fe80:0000:0000:0000:0000:0000:0000:0001\t\tlocalhost       # inline comment separated by space
fe80:0000:0000:0000:0000:0000:0000:0002%lo0\tlocalhost
fe80::3%lo0\t\t\t\t\tlocalhost\tlocalhost.localdomain"""
CASE = "127.0.0.1\tPreserveMe\tPreserveMe.local\n\t\t::1\t\tPreserveMe\tPreserveMe.local"


def table(text: str, zones: tuple[str, ...] = (".",), reverse: bool = True) -> Table:
    return Table.of(parse_text(text, zones, reverse=reverse))


def v4(t: Table, name: str) -> list[str]:
    owner = t.owner(name)
    return [] if owner is None else [str(ipaddress.ip_address(b)) for b in t.addresses(owner, 4)]


def v6(t: Table, name: str) -> list[str]:
    owner = t.owner(name)
    return [] if owner is None else [str(ipaddress.ip_address(b)) for b in t.addresses(owner, 6)]


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


@pytest.mark.parametrize(
    ("text", "name", "want4", "want6"),
    [
        (HOSTS, "odin", ["127.0.0.2", "127.0.0.3"], ["::2"]),
        (HOSTS, "thor", ["127.1.1.1"], []),
        (HOSTS, "ullr", ["127.1.1.2"], []),
        (HOSTS, "ullrhost", ["127.1.1.2"], []),
        (HOSTS, "localhost", [], ["fe80::1"]),
        (SINGLE_LINE, "odin", ["127.0.0.2"], []),
        (IPV4, "localhost", ["127.0.0.1", "127.0.0.2", "127.0.0.3"], []),
        (IPV4, "localhost.localdomain", ["127.0.0.3"], []),
        (IPV6, "localhost", [], ["::1", "fe80::1", "fe80::2", "fe80::3"]),
        (IPV6, "localhost.localdomain", [], ["fe80::3"]),
        (CASE, "PreserveMe", ["127.0.0.1"], ["::1"]),
        (CASE, "PreserveMe.local", ["127.0.0.1"], ["::1"]),
    ],
)
def test_lookup_static_host(text: str, name: str, want4: list[str], want6: list[str]) -> None:
    t = table(text)
    # As Go's testStaticHost: as written, absolute, lower and upper case (keys are lower-case).
    for asked in (name, name + ".", name.lower(), name.upper()):
        key = asked.lower() if asked.endswith(".") else asked.lower() + "."
        assert v4(t, key) == want4
        assert v6(t, key) == want6


@pytest.mark.parametrize(
    ("text", "ip", "want"),
    [
        (HOSTS, "255.255.255.255", ["broadcasthost."]),
        (HOSTS, "127.0.0.2", ["odin."]),
        (HOSTS, "127.0.0.3", ["odin."]),
        (HOSTS, "::2", ["odin."]),
        (HOSTS, "127.1.1.1", ["thor."]),
        (HOSTS, "127.1.1.2", ["ullr.", "ullrhost."]),
        (HOSTS, "fe80::1", ["localhost."]),
        (SINGLE_LINE, "127.0.0.2", ["odin."]),
        (IPV4, "127.0.0.3", ["localhost.", "localhost.localdomain."]),
        (IPV6, "::1", ["localhost."]),
        (IPV6, "fe80::3", ["localhost.", "localhost.localdomain."]),
        (CASE, "127.0.0.1", ["preserveme.", "preserveme.local."]),
        (CASE, "::1", ["preserveme.", "preserveme.local."]),
    ],
)
def test_lookup_static_addr(text: str, ip: str, want: list[str]) -> None:
    assert list(table(text).hosts_of(reverse_name(ip))) == want


def test_bogus_lines_are_skipped_with_their_line_and_reason() -> None:
    parsed = parse_text(HOSTS, (".",))
    assert "loki." not in parsed.v4
    assert [(s.line, s.why) for s in parsed.skipped] == [
        (10, "'123.123.123' is not an IP address"),
        (11, "expected an address and a name"),
    ]
    garbage = parse_text("10.0.0.1 ok.test bad..name\n\x00\x01 x\n10.0.0.2 " + "a" * 64, (".",))
    assert garbage.v4 == {"ok.test.": (ipaddress.IPv4Address("10.0.0.1"),)}
    assert [s.line for s in garbage.skipped] == [1, 2, 3]
    assert parse_text("10.0.0.1 café.test", (".",)).skipped[0].why.startswith("'café.test':")


def test_ipv4_mapped_addresses_are_ipv4_as_in_coredns() -> None:
    # CoreDNS's hosts_test.go: `::FFFF:10.0.0.2 example.com` answers A 10.0.0.2.
    t = table("::FFFF:10.0.0.2 example.com")
    assert v4(t, "example.com.") == ["10.0.0.2"] and v6(t, "example.com.") == []
    assert t.hosts_of("2.0.0.10.in-addr.arpa.") == ("example.com.",)
    # The same address asked in its ip6.arpa form finds the same names.
    assert t.hosts_of(reverse_name("::ffff:10.0.0.2")) == ("example.com.",)
    assert address("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")


def test_names_outside_the_zones_are_dropped() -> None:
    t = table("10.0.0.1 a.example.org b.example.net\n10.0.0.2 example.org", ("example.org.",))
    assert v4(t, "a.example.org.") == ["10.0.0.1"]
    assert t.owner("b.example.net.") is None
    assert t.hosts_of("1.0.0.10.in-addr.arpa.") == ("a.example.org.",)
    assert v4(t, "example.org.") == ["10.0.0.2"]


def test_no_reverse_keeps_addresses_without_ptr() -> None:
    t = table("10.0.0.1 a.test", reverse=False)
    assert v4(t, "a.test.") == ["10.0.0.1"]
    assert t.hosts_of("1.0.0.10.in-addr.arpa.") == ()
    assert t.entries == 1
    assert table("10.0.0.1 a.test").entries == 2  # CoreDNS counts the PTR name as an entry


def test_wildcards_match_one_label_and_explicit_names_win() -> None:
    # The README's example: *.example.com with explicit exceptions.
    t = table("192.168.1.10 *.example.com\n192.168.1.11 a.example.com\n192.168.1.12 b.example.com")
    assert v4(t, "a.example.com.") == ["192.168.1.11"]
    assert v4(t, "b.example.com.") == ["192.168.1.12"]
    assert v4(t, "apps.example.com.") == ["192.168.1.10"]
    assert t.owner("example.com.") is None  # the apex is not matched
    assert t.owner("deep.apps.example.com.") is None  # one label only
    assert t.hosts_of("10.1.168.192.in-addr.arpa.") == ()  # no PTR for wildcards
    assert t.hosts_of("11.1.168.192.in-addr.arpa.") == ("a.example.com.",)


def test_file_entries_come_before_inline_ones() -> None:
    file = parse_text("10.0.0.1 a.test\n::1 a.test", (".",))
    inline = parse_text("10.0.0.2 a.test\n10.0.0.1 b.test", (".",))
    t = Table.of(file, inline)
    assert v4(t, "a.test.") == ["10.0.0.1", "10.0.0.2"]
    assert v6(t, "a.test.") == ["::1"]
    assert t.hosts_of("1.0.0.10.in-addr.arpa.") == ("a.test.", "b.test.")
    assert t.entries == len(file) + len(inline) == 8
    assert len(EMPTY) == 0 and Table.of().owner("a.test.") is None

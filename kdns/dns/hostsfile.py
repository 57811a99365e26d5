"""hosts(5) text as the tables CoreDNS's `hosts` plugin answers from: names to addresses and,
unless turned off, addresses to names (for PTR).

A line is `ADDRESS NAME [ALIAS...]`; `#` starts a comment. As in CoreDNS, names are lower-cased
and made absolute, names outside the plugin's zones are dropped, an IPv4-mapped IPv6 address
(`::ffff:10.0.0.2`) is an IPv4 address, and an IPv6 zone (`fe80::1%eth0`) is ignored. A name
whose leftmost label is `*` answers for any one label in its place (`*.example.com` serves
`a.example.com`, not `example.com` or `a.b.example.com`); it gets no PTR record. Lines that
are not entries (a lone word, a bad address, a name that cannot be a DNS name) are skipped and
reported in `Parsed.skipped` so the caller can say where they are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from kdns.dns import names

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int  # 1-based, in the text that was parsed
    text: str
    why: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """The entries of one text, in the order they appear."""

    v4: dict[str, tuple[Address, ...]] = field(default_factory=dict)
    v6: dict[str, tuple[Address, ...]] = field(default_factory=dict)
    by_address: dict[Address, tuple[str, ...]] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()

    def __len__(self) -> int:
        """CoreDNS's entry count (`coredns_hosts_entries`): addresses of names plus names of
        addresses."""
        return (
            sum(map(len, self.v4.values()))
            + sum(map(len, self.v6.values()))
            + sum(map(len, self.by_address.values()))
        )


EMPTY = Parsed()


def address(text: str) -> Address | None:
    """The address a hosts line starts with, IPv4-mapped IPv6 as IPv4, any IPv6 zone dropped."""
    text = text.partition("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _name_problem(name: str) -> str | None:
    if not name.isascii():
        return "a host name is ASCII (IDNs are written in punycode)"
    try:
        names.to_wire(name)
    except ValueError:
        return "not a valid DNS name (empty label, or a label over 63 or a name over 253 octets)"
    return None


def parse(
    lines: Iterable[tuple[int, str]], zones: tuple[str, ...], *, reverse: bool = True
) -> Parsed:
    """Entries of `(line number, text)` pairs for names within `zones`."""
    v4: dict[str, list[Address]] = {}
    v6: dict[str, list[Address]] = {}
    by_address: dict[Address, list[str]] = {}
    skipped: list[Skipped] = []
    for number, raw in lines:
        fields = raw.partition("#")[0].split()
        if not fields:
            continue
        if len(fields) < 2:
            skipped.append(Skipped(number, raw.strip(), "expected an address and a name"))
            continue
        ip = address(fields[0])
        if ip is None:
            skipped.append(Skipped(number, raw.strip(), f"{fields[0]!r} is not an IP address"))
            continue
        table = v4 if ip.version == 4 else v6
        for word in fields[1:]:
            name = names.normalize(word)
            problem = _name_problem(name)
            if problem is not None:
                skipped.append(Skipped(number, raw.strip(), f"{word!r}: {problem}"))
                continue
            if names.longest_zone(name, zones) is None:
                continue  # outside the zones served: not ours, as in CoreDNS
            table.setdefault(name, []).append(ip)
            if reverse and not name.startswith("*."):
                by_address.setdefault(ip, []).append(name)
    return Parsed(
        {k: tuple(v) for k, v in v4.items()},
        {k: tuple(v) for k, v in v6.items()},
        {k: tuple(v) for k, v in by_address.items()},
        tuple(skipped),
    )


def parse_text(text: str, zones: tuple[str, ...], *, reverse: bool = True) -> Parsed:
    return parse(enumerate(text.splitlines(), 1), zones, reverse=reverse)


@dataclass(frozen=True, slots=True)
class Table:
    """What the plugin answers from: a file's entries followed by the Corefile's inline ones,
    as CoreDNS looks both up and concatenates them (file first)."""

    v4: dict[str, tuple[bytes, ...]]
    v6: dict[str, tuple[bytes, ...]]
    by_address: dict[Address, tuple[str, ...]]
    entries: int

    @classmethod
    def of(cls, *parts: Parsed) -> Table:
        v4: dict[str, tuple[bytes, ...]] = {}
        v6: dict[str, tuple[bytes, ...]] = {}
        by_address: dict[Address, tuple[str, ...]] = {}
        for part in parts:
            for name, ips in part.v4.items():
                v4[name] = v4.get(name, ()) + tuple(ip.packed for ip in ips)
            for name, ips in part.v6.items():
                v6[name] = v6.get(name, ()) + tuple(ip.packed for ip in ips)
            for ip, hosts in part.by_address.items():
                by_address[ip] = by_address.get(ip, ()) + hosts
        return cls(v4, v6, by_address, sum(len(p) for p in parts))

    def owner(self, name: str) -> str | None:
        """The entry that holds `name`'s addresses (itself, or the wildcard one label up), or
        None when the hosts data does not know the name."""
        if name in self.v4 or name in self.v6:
            return name
        labels = names.split(name)
        if len(labels) < 2:
            return None
        wildcard = "*." + ".".join(labels[1:]) + "."
        return wildcard if wildcard in self.v4 or wildcard in self.v6 else None

    def addresses(self, owner: str, version: int) -> tuple[bytes, ...]:
        return (self.v4 if version == 4 else self.v6).get(owner, ())

    def hosts_of(self, reverse_name: str) -> tuple[str, ...]:
        """The names whose PTR records a reverse name (`1.0.0.10.in-addr.arpa.`) gets."""
        text = names.ptr_to_ip(reverse_name)
        ip = None if text is None else address(text)
        return () if ip is None else self.by_address.get(ip, ())


EMPTY_TABLE = Table.of()

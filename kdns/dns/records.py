"""Resource records as plain values, with their rdata already in wire form.

An RR keeps its owner name as text (letter case preserved) and its rdata as uncompressed wire
bytes, so a message can be encoded without a DNS library, and answers can be built once per
published index and reused for every query.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass

from kdns.dns import names
from kdns.dns.frozen import fast_init

A = 1
NS = 2
CNAME = 5
SOA = 6
PTR = 12
HINFO = 13
MX = 15
TXT = 16
AAAA = 28
SRV = 33
DNAME = 39
OPT = 41
DS = 43
RRSIG = 46
NSEC = 47
DNSKEY = 48
NSEC3 = 50
HTTPS = 65
TSIG = 250
IXFR = 251
AXFR = 252
ANY = 255

CLASS_IN = 1
CLASS_CH = 3  # CHAOS (RFC 1035): server identity queries
CLASS_ANY = 255

TYPE_NAMES: dict[int, str] = {
    A: "A",
    NS: "NS",
    CNAME: "CNAME",
    SOA: "SOA",
    PTR: "PTR",
    HINFO: "HINFO",
    MX: "MX",
    TXT: "TXT",
    AAAA: "AAAA",
    SRV: "SRV",
    DNAME: "DNAME",
    OPT: "OPT",
    DS: "DS",
    RRSIG: "RRSIG",
    NSEC: "NSEC",
    DNSKEY: "DNSKEY",
    NSEC3: "NSEC3",
    HTTPS: "HTTPS",
    IXFR: "IXFR",
    AXFR: "AXFR",
    ANY: "ANY",
    99: "SPF",
    64: "SVCB",
    257: "CAA",
    35: "NAPTR",
    52: "TLSA",
}
TYPE_BY_NAME: dict[str, int] = {v: k for k, v in TYPE_NAMES.items()}


def type_name(rtype: int) -> str:
    return TYPE_NAMES.get(rtype, f"TYPE{rtype}")


def type_from_text(text: str) -> int:
    """`A`, `aaaa`, `TYPE65` -> number; raises ValueError for unknown names."""
    up = text.upper()
    if up in TYPE_BY_NAME:
        return TYPE_BY_NAME[up]
    if up.startswith("TYPE") and up[4:].isdigit():
        return int(up[4:])
    raise ValueError(f"unknown record type {text!r}")


@fast_init
@dataclass(frozen=True, slots=True)
class RR:
    name: str
    rtype: int
    ttl: int
    rdata: bytes
    rclass: int = CLASS_IN

    # Direct construction, not dataclasses.replace(): these run for every record a cache or
    # plugin rewrites, and replace() introspects the fields on each call (~10x slower).
    def with_ttl(self, ttl: int) -> RR:
        return RR(self.name, self.rtype, ttl, self.rdata, self.rclass)


# An address's wire form, memoised: ipaddress parses in ~3 us where socket.inet_pton took
# ~0.1 us, and cluster answers build A/AAAA records from the same few thousand endpoint addresses
# on every publish; a cache hit costs ~0.1 us, as inet_pton did, without the pure core importing
# socket. Bounded, so addresses of deleted endpoints do not pile up.
@functools.lru_cache(maxsize=1 << 16)
def _packed_v4(ip: str) -> bytes:
    try:
        return ipaddress.IPv4Address(ip).packed
    except ValueError:
        raise ValueError(f"not an IPv4 address: {ip!r}") from None


@functools.lru_cache(maxsize=1 << 16)
def _packed_v6(ip: str) -> bytes:
    # ipaddress accepts a scope ("fe80::1%eth0"), which has no place in rdata.
    try:
        if "%" in ip:
            raise ValueError(ip)
        return ipaddress.IPv6Address(ip).packed
    except ValueError:
        raise ValueError(f"not an IPv6 address: {ip!r}") from None


def a(name: str, ttl: int, ip: str) -> RR:
    return RR(name, A, ttl, _packed_v4(ip))


def aaaa(name: str, ttl: int, ip: str) -> RR:
    return RR(name, AAAA, ttl, _packed_v6(ip))


def is_address(text: str) -> bool:
    """True for an IPv4 or IPv6 address in text form."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def address(name: str, ttl: int, ip: str) -> RR:
    return a(name, ttl, ip) if ":" not in ip else aaaa(name, ttl, ip)


def cname(name: str, ttl: int, target: str) -> RR:
    return RR(name, CNAME, ttl, names.to_wire(target))


def ptr(name: str, ttl: int, target: str) -> RR:
    return RR(name, PTR, ttl, names.to_wire(target))


def ns(name: str, ttl: int, target: str) -> RR:
    return RR(name, NS, ttl, names.to_wire(target))


def srv(name: str, ttl: int, priority: int, weight: int, port: int, target: str) -> RR:
    return RR(name, SRV, ttl, struct.pack("!HHH", priority, weight, port) + names.to_wire(target))


def soa(
    name: str,
    ttl: int,
    mname: str,
    rname: str,
    serial: int,
    refresh: int,
    retry: int,
    expire: int,
    minimum: int,
) -> RR:
    fixed = struct.pack("!IIIII", serial & 0xFFFFFFFF, refresh, retry, expire, minimum)
    return RR(name, SOA, ttl, names.to_wire(mname) + names.to_wire(rname) + fixed)


def txt(name: str, ttl: int, *strings: str) -> RR:
    out = bytearray()
    for s in strings:
        raw = s.encode()
        for i in range(0, max(len(raw), 1), 255):
            chunk = raw[i : i + 255]
            out.append(len(chunk))
            out += chunk
    return RR(name, TXT, ttl, bytes(out))


def rdata_text(rr: RR) -> str:
    """Presentation form of common rdata (for logs, diagnose output and tests)."""
    data = rr.rdata
    if rr.rtype == A and len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if rr.rtype == AAAA and len(data) == 16:
        return str(ipaddress.IPv6Address(data))
    if rr.rtype in (CNAME, PTR, NS):
        return _name_from_rdata(data, 0)[0]
    if rr.rtype == SRV:
        prio, weight, port = struct.unpack("!HHH", data[:6])
        return f"{prio} {weight} {port} {_name_from_rdata(data, 6)[0]}"
    if rr.rtype == SOA:
        mname, off = _name_from_rdata(data, 0)
        rname, off = _name_from_rdata(data, off)
        nums = struct.unpack("!IIIII", data[off : off + 20])
        return f"{mname} {rname} " + " ".join(str(n) for n in nums)
    if rr.rtype == MX:
        return f"{struct.unpack('!H', data[:2])[0]} {_name_from_rdata(data, 2)[0]}"
    if rr.rtype == TXT:
        parts = []
        i = 0
        while i < len(data):
            n = data[i]
            parts.append('"' + data[i + 1 : i + 1 + n].decode(errors="replace") + '"')
            i += 1 + n
        return " ".join(parts)
    return "\\# " + str(len(data)) + " " + data.hex()


def _name_from_rdata(data: bytes, off: int) -> tuple[str, int]:
    labels = []
    while off < len(data):
        n = data[off]
        off += 1
        if n == 0:
            break
        labels.append(names.label_from_wire(data[off : off + n]))
        off += n
    return ".".join(labels) + ".", off

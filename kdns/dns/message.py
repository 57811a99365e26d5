"""Requests and replies as frozen values.

A Reply carries no message ID and no question: the encoder takes both from the Request it answers,
so a cached or shared Reply can never leak another client's ID or letter case. Plugins change a
reply with `dataclasses.replace`, never in place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kdns.dns import names
from kdns.dns.frozen import fast_init
from kdns.dns.records import RR

# Response codes (RFC 1035, 2671, 6891). BADVERS is an extended rcode (needs OPT).
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
NOTAUTH = 9
BADVERS = 16
BADKEY = 17  # a TSIG error (RFC 8945): the key is not known
# Not an rcode: a plugin's way of saying "send nothing at all" (acl's drop).
DROP = -1

RCODE_NAMES = {
    NOERROR: "NOERROR",
    FORMERR: "FORMERR",
    SERVFAIL: "SERVFAIL",
    NXDOMAIN: "NXDOMAIN",
    NOTIMP: "NOTIMP",
    REFUSED: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    NOTAUTH: "NOTAUTH",
    10: "NOTZONE",
    BADVERS: "BADVERS",
    DROP: "DROPPED",
}


def rcode_name(rcode: int) -> str:
    return RCODE_NAMES.get(rcode, f"RCODE{rcode}")


# Header flag bits (second 16-bit word).
FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
FLAG_AD = 0x0020
FLAG_CD = 0x0010

EDNS_DO = 0x8000
MIN_UDP_SIZE = 512
TCP_MAX_SIZE = 65535

# EDNS0 option codes (IANA "DNS EDNS0 Option Codes").
OPT_NSID = 3
OPT_EDE = 15
OPT_COOKIE = 10  # RFC 7873

EdnsOption = tuple[int, bytes]  # (code, data)


@dataclass(frozen=True, slots=True)
class Edns:
    udp_size: int
    version: int = 0
    do: bool = False
    options: tuple[EdnsOption, ...] = ()

    def has(self, code: int) -> bool:
        return any(c == code for c, _ in self.options)


@fast_init
@dataclass(frozen=True, slots=True)
class Request:
    id: int
    qname: str  # as asked, letter case kept
    name: str  # lower-cased key
    qtype: int
    qclass: int
    flags: int
    edns: Edns | None
    proto: str  # "udp" or "tcp"
    client: str
    port: int = 0
    qname_wire: bytes = b""
    size: int = 0  # bytes on the wire
    authority: tuple[RR, ...] = ()  # the query's authority section (an IXFR carries an SOA)

    @property
    def rd(self) -> bool:
        return bool(self.flags & FLAG_RD)

    @property
    def cd(self) -> bool:
        return bool(self.flags & FLAG_CD)

    @property
    def do(self) -> bool:
        return self.edns is not None and self.edns.do

    @property
    def max_size(self) -> int:
        """Largest reply the client accepts: 65535 over TCP, else its EDNS size (at least 512)."""
        if self.proto == "tcp":
            return TCP_MAX_SIZE
        if self.edns is None:
            return MIN_UDP_SIZE
        return max(MIN_UDP_SIZE, self.edns.udp_size)

    @property
    def family(self) -> int:
        return 2 if ":" in self.client else 1

    def with_question(self, qname: str, qtype: int | None = None) -> Request:
        """The same request asking another name (autopath, ExternalName chasing)."""
        return replace(
            self,
            qname=qname,
            name=names.normalize(qname),
            qtype=self.qtype if qtype is None else qtype,
            qname_wire=names.to_wire(qname),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class Reply:
    rcode: int
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    additional: tuple[RR, ...] = ()
    aa: bool = False
    tc: bool = False
    ra: bool = False
    ad: bool = False
    plugin: str = ""  # the plugin that wrote it (metrics label)
    error: str = ""  # why a plugin failed (SERVFAIL), for the errors log
    # EDNS0 options for the reply's OPT record (NSID, extended errors).
    options: tuple[EdnsOption, ...] = ()
    # A lower UDP payload size than the client's (bufsize): advertised and used to truncate.
    size_cap: int = 0

    def aged(self, seconds: int) -> Reply:
        """The reply with every TTL lowered by `seconds` (never below zero), for caches."""
        if seconds <= 0:
            return self
        return self.with_records(
            tuple(r.with_ttl(max(0, r.ttl - seconds)) for r in self.answer),
            tuple(r.with_ttl(max(0, r.ttl - seconds)) for r in self.authority),
            tuple(r.with_ttl(max(0, r.ttl - seconds)) for r in self.additional),
        )

    def with_records(
        self,
        answer: tuple[RR, ...],
        authority: tuple[RR, ...],
        additional: tuple[RR, ...],
        plugin: str | None = None,
    ) -> Reply:
        """The same reply with other sections, and another writer when `plugin` is given
        (direct construction: replace() is slow, and caches call this on every miss)."""
        return Reply(
            self.rcode,
            answer,
            authority,
            additional,
            self.aa,
            self.tc,
            self.ra,
            self.ad,
            self.plugin if plugin is None else plugin,
            self.error,
            self.options,
            self.size_cap,
        )


def error(rcode: int, plugin: str = "", why: str = "") -> Reply:
    return Reply(rcode=rcode, plugin=plugin, error=why)

"""One resource record from its RFC 1035 text (`name [ttl] [class] type rdata`), as CoreDNS's
template plugin reads what a template rendered (miekg/dns's NewRR): relative names are taken
from the root, a missing TTL is 3600, parentheses may group the rdata (`(1 60 60 60 60)`).

dnslib reads the text; the record comes back as a kdns RR with uncompressed rdata.
"""

from __future__ import annotations

from dnslib import RR as DnslibRR
from dnslib import DNSBuffer, DNSError

from kdns.dns.records import RR

DEFAULT_TTL = 3600


class _Flat(DNSBuffer):  # type: ignore[misc]
    """A buffer that never compresses names: kdns keeps rdata self-contained."""

    def encode_name(self, name: object) -> None:
        self.encode_name_nocompress(name)


def _ungroup(text: str) -> str:
    """Parentheses outside quotes become spaces (they only let a record span lines)."""
    out: list[str] = []
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch in "()" and not quoted:
            ch = " "
        out.append(ch)
    return "".join(out)


def parse(text: str) -> RR:
    """The first record of `text`; ValueError says why there is none."""
    if "\n" in text or "\r" in text:
        raise ValueError("a record is one line")
    try:
        records = DnslibRR.fromZone(_ungroup(text), ttl=DEFAULT_TTL)
    except (DNSError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"bad resource record {text!r}: {exc}") from None
    if not records:
        raise ValueError(f"no resource record in {text!r}")
    rec = records[0]
    try:
        data = pack(rec.rdata)
    except ValueError as exc:
        raise ValueError(f"bad resource record {text!r}: {exc}") from None
    return RR(str(rec.rname), int(rec.rtype), int(rec.ttl), data, int(rec.rclass))


def pack(rdata: object) -> bytes:
    """Uncompressed wire form of a dnslib rdata object; ValueError when it does not encode."""
    buf = _Flat()
    try:
        rdata.pack(buf)  # type: ignore[attr-defined]
    except (DNSError, ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    return bytes(buf.data)

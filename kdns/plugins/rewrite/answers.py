"""What `rewrite` does to a reply: record names and values mapped back, TTLs, the rcode.

A response rule is a function from Reply to Reply. The rules a query collected run in reverse
order of collection, so the last request rewrite is undone first, as CoreDNS's reverter does.
Replies are values: a rule builds new records, it never edits the ones a cache holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from kdns.dns import names
from kdns.dns.message import Reply
from kdns.dns.records import CNAME, MX, NS, PTR, RR, SOA, SRV
from kdns.dns.wire import WireError, read_name

ResponseRule = Callable[[Reply], Reply]
StringMap = Callable[[str], str]  # returns its argument when it does not apply

DNAME = 39
NAPTR = 35
# Where the one name a record's value holds starts in its rdata (NAPTR: after three strings).
_VALUE_AT = {CNAME: 0, NS: 0, PTR: 0, DNAME: 0, SOA: 0, MX: 2, SRV: 6}


def substitute(template: str, found: re.Match[str]) -> str:
    """`{0}`..`{N}` in `template` replaced by the groups of `found` (a missing group: "")."""
    out = template
    for i, value in enumerate((found.group(0), *found.groups())):
        out = out.replace(f"{{{i}}}", value or "")
    return out


def regex_map(pattern: re.Pattern[str], replacement: str) -> StringMap:
    """A name the pattern finds anything in becomes the whole replacement (CoreDNS's
    regexStringRewriter): `answer name (.*)\\.svc\\.cluster\\.local {1}.my.domain`."""

    def apply(src: str) -> str:
        found = pattern.search(src)
        return src if found is None else substitute(replacement, found)

    return apply


def remap(orig: str, replacement: str) -> StringMap:
    """`orig` itself and names below it, with `orig` swapped for `replacement` (answer auto)."""
    key, tail = orig.lower(), "." + orig.lower()

    def apply(src: str) -> str:
        low = src.lower()
        if low == key:
            return replacement
        if low.endswith(tail):
            return src[: len(src) - len(orig)] + replacement
        return src

    return apply


def suffix_map(suffix: str, replacement: str) -> StringMap:
    def apply(src: str) -> str:
        if src.lower().endswith(suffix):
            return src[: len(src) - len(suffix)] + replacement
        return src

    return apply


def _valid(name: str) -> bool:
    try:
        names.to_wire(name)
    except ValueError:
        return False
    return True


def _records(reply: Reply, one: Callable[[RR], RR]) -> Reply:
    return reply.with_records(
        tuple(one(r) for r in reply.answer),
        tuple(one(r) for r in reply.authority),
        tuple(one(r) for r in reply.additional),
    )


def rename(mapping: StringMap) -> ResponseRule:
    """Owner names of every record in the reply through `mapping`."""

    def one(rr: RR) -> RR:
        new = mapping(rr.name)
        if new == rr.name or not _valid(new):
            return rr
        return RR(new, rr.rtype, rr.ttl, rr.rdata, rr.rclass)

    return lambda reply: _records(reply, one)


def _value_span(rr: RR) -> tuple[int, int, str] | None:
    """(start, end, text) of the name a record's value holds, or None."""
    start = _VALUE_AT.get(rr.rtype)
    data = rr.rdata
    try:
        if start is None:
            if rr.rtype != NAPTR:
                return None
            start = 4
            for _ in range(3):  # flags, services, regexp: <length><bytes> each
                start += 1 + data[start]
        text, end, _ = read_name(data, start)
    except (IndexError, WireError):
        return None
    return start, end, text


def revalue(mapping: StringMap) -> ResponseRule:
    """The name in each record's value (CNAME, DNAME, NS, PTR, MX, SRV, NAPTR targets, an SOA's
    primary server) through `mapping`."""

    def one(rr: RR) -> RR:
        span = _value_span(rr)
        if span is None:
            return rr
        start, end, text = span
        new = mapping(text)
        if new == text or not _valid(new):
            return rr
        rdata = rr.rdata[:start] + names.to_wire(new) + rr.rdata[end:]
        return RR(rr.name, rr.rtype, rr.ttl, rdata, rr.rclass)

    return lambda reply: _records(reply, one)


def both(mapping: StringMap) -> tuple[ResponseRule, ResponseRule]:
    """Names and values through one mapping (what `answer auto` reverts)."""
    return rename(mapping), revalue(mapping)


def clamp_ttl(low: int, high: int) -> ResponseRule:
    """Every record's TTL raised to `low` and lowered to `high` (equal: set to that value)."""

    def one(rr: RR) -> RR:
        ttl = low if rr.ttl < low else high if rr.ttl > high else rr.ttl
        return rr if ttl == rr.ttl else rr.with_ttl(ttl)

    return lambda reply: _records(reply, one)


def change_rcode(old: int, new: int) -> ResponseRule:
    """The whole reply's rcode, also for a reply without records (a bare SERVFAIL)."""
    return lambda reply: replace(reply, rcode=new) if reply.rcode == old else reply


def strip_option(code: int) -> ResponseRule:
    """The EDNS0 option `code` kept out of the reply (an edns0 rule's `revert`)."""

    def apply(reply: Reply) -> Reply:
        kept = tuple(o for o in reply.options if o[0] != code)
        return reply if len(kept) == len(reply.options) else replace(reply, options=kept)

    return apply

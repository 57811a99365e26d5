"""kdns's wire codec checked against an independent one, dnslib, on valid messages.

Hypothesis builds answers of several record types; kdns encodes them and dnslib must read the
same records back, and dnslib encodes them and kdns must decode the same records (names,
types, TTLs, rdata). Record text on both sides is dnslib's zone-file presentation.
"""

from __future__ import annotations

import dnslib
from hypothesis import given, settings
from hypothesis import strategies as st

from kdns.dns import wire
from kdns.dns.message import NOERROR, Reply
from kdns.dns.records import RR
from tests.support.plugins import request

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
NAME = st.lists(LABEL, min_size=1, max_size=4).map(lambda labels: ".".join(labels) + ".")
TTL = st.integers(0, 2**31 - 1)
IPV4 = st.ip_addresses(v=4).map(str)
IPV6 = st.ip_addresses(v=6).map(str)


def rdata(rtype: str) -> st.SearchStrategy[dnslib.RD]:
    if rtype == "A":
        return IPV4.map(dnslib.A)
    if rtype == "AAAA":
        return IPV6.map(dnslib.AAAA)
    if rtype in ("CNAME", "PTR", "NS"):
        cls = getattr(dnslib, rtype)
        return NAME.map(cls)
    if rtype == "MX":
        return st.builds(lambda n, p: dnslib.MX(n, p), NAME, st.integers(0, 65535))
    if rtype == "SRV":
        return st.builds(
            lambda p, w, port, t: dnslib.SRV(p, w, port, t),
            st.integers(0, 65535),
            st.integers(0, 65535),
            st.integers(0, 65535),
            NAME,
        )
    return st.lists(st.binary(max_size=40), min_size=1, max_size=3).map(dnslib.TXT)


RTYPES = ("A", "AAAA", "CNAME", "PTR", "NS", "MX", "SRV", "TXT")
RECORD = st.sampled_from(RTYPES).flatmap(
    lambda t: st.builds(
        lambda name, ttl, rd: dnslib.RR(name, getattr(dnslib.QTYPE, t), ttl=ttl, rdata=rd),
        NAME,
        TTL,
        rdata(t),
    )
)


def as_text(rrs: list[dnslib.RR]) -> list[str]:
    return sorted(rr.toZone() for rr in rrs)


def to_kdns(rr: dnslib.RR) -> RR:
    """A dnslib record as kdns holds it: rdata in wire form without compression."""
    buf = dnslib.DNSBuffer()
    rr.rdata.pack(buf)
    return RR(str(rr.rname), rr.rtype, rr.ttl, bytes(buf.data))


@settings(max_examples=200)
@given(st.lists(RECORD, min_size=1, max_size=8))
def test_dnslib_reads_what_kdns_writes(records: list[dnslib.RR]) -> None:
    query = request("q.example.", "A")
    out = wire.encode(query, Reply(rcode=NOERROR, answer=tuple(to_kdns(r) for r in records)))
    parsed = dnslib.DNSRecord.parse(out)
    assert parsed.header.id == query.id
    assert str(parsed.q.qname) == "q.example."
    assert as_text(parsed.rr) == as_text(records)


@settings(max_examples=200)
@given(st.lists(RECORD, min_size=1, max_size=8), st.integers(0, 0xFFFF))
def test_kdns_reads_what_dnslib_writes(records: list[dnslib.RR], mid: int) -> None:
    msg = dnslib.DNSRecord(dnslib.DNSHeader(id=mid, qr=1, ra=1), q=dnslib.DNSQuestion("q.example."))
    for rr in records:
        msg.add_answer(rr)
    decoded = wire.decode_message(msg.pack())  # dnslib compresses names; kdns must expand them
    assert decoded.id == mid
    assert decoded.question == (("q.example.", 1, 1),)
    back = [
        dnslib.RR(
            rr.name,
            rr.rtype,
            ttl=rr.ttl,
            rdata=dnslib.RDMAP.get(dnslib.QTYPE.get(rr.rtype), dnslib.RD).parse(
                dnslib.DNSBuffer(rr.rdata), len(rr.rdata)
            ),
        )
        for rr in decoded.answer
    ]
    assert as_text(back) == as_text(records)

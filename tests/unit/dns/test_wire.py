"""Wire rules: screening, decoding, encoding, EDNS, truncation; dnspython checks our bytes."""

from __future__ import annotations

import contextlib
import struct

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdns.dns import names, wire
from kdns.dns import records as rr
from kdns.dns.message import BADVERS, FORMERR, NOERROR, NOTIMP, Reply, Request
from tests.support.client import make_query


def decode(q: dns.message.Message, proto: str = "udp") -> Request:
    out = wire.decode_query(q.to_wire(), proto, "127.0.0.1", 5353)
    assert isinstance(out, Request)
    return out


def test_query_fields() -> None:
    q = make_query("WeB.Default.svc.cluster.local.", "AAAA", payload=1400)
    q.flags |= dns.flags.CD
    req = decode(q)
    assert req.qname == "WeB.Default.svc.cluster.local."
    assert req.name == "web.default.svc.cluster.local."
    assert req.qtype == rr.AAAA and req.rd and req.cd and req.id == q.id
    assert req.edns is not None and req.edns.udp_size == 1400 and req.max_size == 1400


@pytest.mark.parametrize(
    ("edns", "payload", "proto", "size"),
    [(None, 0, "udp", 512), (0, 256, "udp", 512), (0, 4096, "udp", 4096), (None, 0, "tcp", 65535)],
)
def test_max_size(edns: int | None, payload: int, proto: str, size: int) -> None:
    assert decode(make_query("a.", "A", edns=edns, payload=payload), proto).max_size == size


def test_reply_keeps_question_case_and_id() -> None:
    q = make_query("SvC1.TestNS.svc.Cluster.Local.", "A")
    req = decode(q)
    reply = Reply(NOERROR, (rr.a(req.qname, 5, "10.0.0.1"),), aa=True)
    msg = dns.message.from_wire(wire.encode(req, reply))
    assert msg.id == q.id and msg.flags & dns.flags.QR and msg.flags & dns.flags.AA
    assert msg.question[0].name.to_text() == "SvC1.TestNS.svc.Cluster.Local."
    assert msg.answer[0].name.to_text() == "SvC1.TestNS.svc.Cluster.Local."
    assert msg.edns == 0  # OPT echoed when the query had one


def test_no_opt_without_edns() -> None:
    req = decode(make_query("a.", "A", edns=None))
    msg = dns.message.from_wire(wire.encode(req, Reply(NOERROR)))
    assert msg.edns == -1


def test_truncation_keeps_question_and_whole_records() -> None:
    req = decode(make_query("big.example.", "A", edns=None))
    answers = tuple(rr.a("big.example.", 300, f"198.51.100.{i}") for i in range(1, 61))
    out = wire.encode(req, Reply(NOERROR, answers))
    assert len(out) <= 512
    msg = dns.message.from_wire(out)
    assert msg.flags & dns.flags.TC
    assert msg.question[0].name.to_text() == "big.example."
    assert 0 < len(msg.answer[0]) < 60
    over_tcp = decode(make_query("big.example.", "A", edns=None), "tcp")
    full = dns.message.from_wire(wire.encode(over_tcp, Reply(NOERROR, answers)))
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 60


def test_edns_version_above_zero_is_badvers() -> None:
    q = make_query("a.", "A", edns=1)
    out = wire.decode_query(q.to_wire(), "udp", "127.0.0.1")
    assert isinstance(out, bytes)
    msg = dns.message.from_wire(out)
    assert msg.rcode() == BADVERS and msg.edns == 0


def test_qr_set_is_dropped() -> None:
    q = make_query("a.", "A")
    q.flags |= dns.flags.QR
    assert wire.decode_query(q.to_wire(), "udp", "127.0.0.1") is None


def test_short_packet_is_dropped() -> None:
    assert wire.decode_query(b"\x01\x02\x03", "udp", "127.0.0.1") is None


def test_opcode_other_than_query_is_notimp() -> None:
    q = make_query("a.", "A")
    q.set_opcode(dns.opcode.NOTIFY)  # type: ignore[attr-defined]
    out = wire.decode_query(q.to_wire(), "udp", "127.0.0.1")
    assert isinstance(out, bytes)
    msg = dns.message.from_wire(out)
    assert msg.rcode() == NOTIMP and msg.id == q.id


@pytest.mark.parametrize("qdcount", [0, 2])
def test_qdcount_not_one_is_formerr(qdcount: int) -> None:
    data = bytearray(make_query("a.", "A", edns=None).to_wire())
    struct.pack_into("!H", data, 4, qdcount)
    out = wire.decode_query(bytes(data), "udp", "127.0.0.1")
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out, question_only=True).rcode() == FORMERR


def test_compression_pointer_loop_is_formerr_fast() -> None:
    # A question whose name is a pointer to itself: must not loop.
    data = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    out = wire.decode_query(data, "udp", "127.0.0.1")
    assert isinstance(out, bytes) and out[3] & 0xF == FORMERR


def test_pointer_chain_in_message_is_rejected() -> None:
    # Each pointer points to the one before it: bounded, and rejected as forward/looping.
    body = b"".join(struct.pack("!H", 0xC000 | (12 + 2 * i)) for i in range(200))
    data = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + body
    with pytest.raises(wire.WireError):
        wire.decode_message(data)


def test_bad_edns_option_is_formerr() -> None:
    q = make_query("a.", "A", options=[dns.edns.GenericOption(10, b"12345678")])
    data = bytearray(q.to_wire())
    struct.pack_into("!H", data, len(data) - 10, 0xFF)  # option length runs past the rdata
    out = wire.decode_query(bytes(data), "udp", "127.0.0.1")
    assert isinstance(out, bytes) and out[3] & 0xF == FORMERR


def test_decode_message_expands_compressed_rdata() -> None:
    q = dns.message.make_query("www.example.", "CNAME")
    resp = dns.message.make_response(q)
    resp.answer.append(dns.rrset.from_text("www.example.", 60, "IN", "CNAME", "web.example."))
    resp.answer.append(dns.rrset.from_text("web.example.", 60, "IN", "MX", "10 mail.web.example."))
    msg = wire.decode_message(resp.to_wire())
    assert [rr.rdata_text(r) for r in msg.answer] == ["web.example.", "10 mail.web.example."]
    # Re-encoded elsewhere, the rdata still decodes (no stale compression pointers).
    req = decode(make_query("x.", "A"))
    again = dns.message.from_wire(wire.encode(req, Reply(NOERROR, msg.answer)))
    assert again.answer[1][0].to_text() == "10 mail.web.example."


def test_encode_query_roundtrip() -> None:
    data = wire.encode_query("example.org.", rr.AAAA, 4242, do=True)
    msg = dns.message.from_wire(data)
    assert msg.id == 4242 and msg.question[0].rdtype == dns.rdatatype.AAAA
    assert msg.flags & dns.flags.RD and msg.ednsflags & dns.flags.DO


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decoder_never_raises_on_garbage(data: bytes) -> None:
    out = wire.decode_query(data, "udp", "127.0.0.1")
    assert out is None or isinstance(out, (bytes, Request))
    with contextlib.suppress(wire.WireError):
        wire.decode_message(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.from_regex(r"[a-zA-Z0-9-]{1,20}", fullmatch=True), min_size=1, max_size=5),
    st.sampled_from(["A", "AAAA", "SRV", "TXT", "PTR"]),
    st.lists(st.ip_addresses(v=4).map(str), max_size=80, unique=True),
    st.sampled_from([None, 512, 1232, 4096]),
)
def test_encode_roundtrip_and_size_limit(
    labels: list[str], qtype: str, ips: list[str], payload: int | None
) -> None:
    name = ".".join(labels) + "."
    q = make_query(name, qtype, edns=None if payload is None else 0, payload=payload or 512)
    req = decode(q)
    answers = tuple(rr.a(req.qname, 30, ip) for ip in ips)
    out = wire.encode(req, Reply(NOERROR, answers))
    assert len(out) <= req.max_size
    msg = dns.message.from_wire(out)
    assert msg.id == q.id and msg.question[0].name.to_text() == name
    kept = len(msg.answer[0]) if msg.answer else 0
    assert bool(msg.flags & dns.flags.TC) == (kept < len(ips))
    again = wire.decode_message(out)
    assert len(again.answer) == kept


def test_reverse_name_with_non_ascii_digits_is_no_address() -> None:
    # Byte 0xB9 reads as '¹' (latin-1): str.isdigit() says yes, int() says no. Found by
    # bench/fuzz.py as a SERVFAIL panic on a PTR query.
    assert names.ptr_to_ip("1.0.\xb96.10.in-addr.arpa.") is None
    assert names.ptr_to_ip("1.0.96.10.in-addr.arpa.") == "10.96.0.1"
    assert names.label_to_wire("a\\\xb9\xb2\xb3") == b"a\xb9\xb2\xb3"

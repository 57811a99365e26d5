"""Bytes <-> messages: header screening, a bounded decoder, the encoder and truncation.

The decoder is written for hostile input: every read is bounds-checked, a compression pointer
must point strictly backwards (so loops are impossible), and names are capped at 255 bytes. It
never raises anything but `WireError`. Screening runs on the raw header before anything is parsed,
as miekg/dns's accept function does, so garbage is dropped or answered FORMERR cheaply.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kdns.dns import names
from kdns.dns.message import (
    BADKEY,
    BADVERS,
    EDNS_DO,
    FLAG_AA,
    FLAG_AD,
    FLAG_CD,
    FLAG_QR,
    FLAG_RA,
    FLAG_RD,
    FLAG_TC,
    FORMERR,
    NOTAUTH,
    NOTIMP,
    Edns,
    EdnsOption,
    Reply,
    Request,
)
from kdns.dns.records import CLASS_ANY, CNAME, MX, NS, OPT, PTR, RR, SOA, SRV, TSIG

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_Q_FIXED = struct.Struct("!HH")

# Types whose rdata may hold compressed names (RFC 1035); MX, SRV, SOA are handled apart.
_NAME_RDATA = {NS, CNAME, PTR, 7, 8, 9, 3, 4}  # NS CNAME PTR MB MG MR MD MF
MAX_RECORDS = 4096  # a message of 64 KiB cannot hold more than this many RRs


class WireError(Exception):
    """The bytes are not a well-formed DNS message."""


@dataclass(frozen=True, slots=True)
class Message:
    """A fully decoded message (used for upstream replies and by tests/tools)."""

    id: int
    flags: int
    rcode: int
    question: tuple[tuple[str, int, int], ...]
    answer: tuple[RR, ...]
    authority: tuple[RR, ...]
    additional: tuple[RR, ...]
    edns: Edns | None

    @property
    def tc(self) -> bool:
        return bool(self.flags & FLAG_TC)

    def to_reply(self, plugin: str = "") -> Reply:
        return Reply(
            rcode=self.rcode,
            answer=self.answer,
            authority=self.authority,
            additional=self.additional,
            aa=bool(self.flags & FLAG_AA),
            tc=bool(self.flags & FLAG_TC),
            ra=bool(self.flags & FLAG_RA),
            ad=bool(self.flags & FLAG_AD),
            plugin=plugin,
        )


def read_name(data: bytes, off: int) -> tuple[str, int, bytes]:
    """Decode a possibly compressed name at `off`.

    Returns (text, offset after the name in the original position, uncompressed wire form).
    """
    labels: list[str] = []
    wire = bytearray()
    end = -1
    pos = off
    limit = pos  # pointers must go strictly below the start of the current run
    hops = 0
    while True:
        if pos >= len(data):
            raise WireError("name runs past the end")
        n = data[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise WireError("truncated pointer")
            target = ((n & 0x3F) << 8) | data[pos + 1]
            if end < 0:
                end = pos + 2
            if target >= limit:
                raise WireError("forward or looping compression pointer")
            hops += 1
            if hops > 127:
                raise WireError("too many compression pointers")
            pos = target
            limit = target
            continue
        if n & 0xC0:
            raise WireError("unsupported label type")
        if n == 0:
            wire.append(0)
            if end < 0:
                end = pos + 1
            break
        if pos + 1 + n > len(data):
            raise WireError("label runs past the end")
        raw = data[pos + 1 : pos + 1 + n]
        wire.append(n)
        wire += raw
        if len(wire) > 255:
            raise WireError("name longer than 255 bytes")
        labels.append(names.label_from_wire(raw))
        pos += 1 + n
    text = ".".join(labels) + "." if labels else "."
    return text, end, bytes(wire)


def _read_rr(data: bytes, off: int) -> tuple[RR, int]:
    name, off, _ = read_name(data, off)
    if off + 10 > len(data):
        raise WireError("truncated resource record")
    rtype, rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, off)
    off += 10
    end = off + rdlen
    if end > len(data):
        raise WireError("rdata runs past the end")
    rdata = _expand_rdata(data, rtype, off, end) if rtype != OPT else data[off:end]
    if ttl & 0x80000000 and rtype != OPT:
        ttl = 0  # RFC 2181 8: a TTL with the top bit set is read as zero
    return RR(name, rtype, ttl, rdata, rclass), end


def _expand_rdata(data: bytes, rtype: int, off: int, end: int) -> bytes:
    """Rdata with any compressed names spelled out, so it can be re-encoded anywhere."""
    try:
        if rtype in _NAME_RDATA:
            _, after, wire = read_name(data, off)
            if after != end:
                raise WireError("rdata length mismatch")
            return wire
        if rtype == MX:
            _, after, wire = read_name(data, off + 2)
            if after != end:
                raise WireError("rdata length mismatch")
            return data[off : off + 2] + wire
        if rtype == SRV:
            _, after, wire = read_name(data, off + 6)
            if after != end:
                raise WireError("rdata length mismatch")
            return data[off : off + 6] + wire
        if rtype == SOA:
            _, after, mwire = read_name(data, off)
            _, after, rwire = read_name(data, after)
            if after + 20 != end:
                raise WireError("rdata length mismatch")
            return mwire + rwire + data[after:end]
    except WireError:
        raise
    return data[off:end]


def _read_edns(rr: RR) -> Edns:
    if rr.name != ".":
        raise WireError("OPT owner is not the root")
    # Options are TLVs; a malformed option list makes the message malformed.
    i = 0
    options: list[EdnsOption] = []
    while i < len(rr.rdata):
        if i + 4 > len(rr.rdata):
            raise WireError("truncated EDNS option")
        code, olen = struct.unpack_from("!HH", rr.rdata, i)
        if i + 4 + olen > len(rr.rdata):
            raise WireError("EDNS option runs past the end")
        options.append((code, rr.rdata[i + 4 : i + 4 + olen]))
        i += 4 + olen
    ttl = rr.ttl
    return Edns(rr.rclass, (ttl >> 16) & 0xFF, bool(ttl & EDNS_DO), tuple(options))


def decode_message(data: bytes) -> Message:
    """Decode a whole message (upstream replies). Raises WireError on anything malformed."""
    if len(data) < 12:
        raise WireError("shorter than a header")
    mid, flags, qd, an, ns, ar = _HEADER.unpack_from(data, 0)
    if qd + an + ns + ar > MAX_RECORDS or (qd * 5 + (an + ns + ar) * 11) > len(data) - 12:
        raise WireError("record counts do not fit the message")
    off = 12
    question = []
    for _ in range(qd):
        qname, off, _ = read_name(data, off)
        if off + 4 > len(data):
            raise WireError("truncated question")
        qtype, qclass = _Q_FIXED.unpack_from(data, off)
        off += 4
        question.append((qname, qtype, qclass))
    sections: list[list[RR]] = [[], [], []]
    for idx, count in enumerate((an, ns, ar)):
        for _ in range(count):
            rr, off = _read_rr(data, off)
            sections[idx].append(rr)
    edns = None
    additional = []
    for rr in sections[2]:
        if rr.rtype == OPT:
            if edns is not None:
                raise WireError("more than one OPT record")
            edns = _read_edns(rr)
            ext = (rr.ttl >> 24) & 0xFF
        else:
            additional.append(rr)
    rcode = flags & 0xF
    if edns is not None:
        rcode |= ext << 4
    return Message(
        mid,
        flags,
        rcode,
        tuple(question),
        tuple(sections[0]),
        tuple(sections[1]),
        tuple(additional),
        edns,
    )


def _error_reply(data: bytes, rcode: int, with_question: bytes = b"", extra: bytes = b"") -> bytes:
    mid, flags = struct.unpack_from("!HH", data, 0)
    # miekg/dns's SetReply, as CoreDNS answers: the opcode is echoed, RD and CD only for QUERY.
    echoed = 0x7800 | (FLAG_RD | FLAG_CD if not flags & 0x7800 else 0)
    out_flags = FLAG_QR | (flags & echoed) | (rcode & 0xF)
    header = _HEADER.pack(mid, out_flags, 1 if with_question else 0, 0, 0, 1 if extra else 0)
    return header + with_question + extra


def _tsig_badkey(data: bytes, start: int) -> bytes:
    """The unsigned TSIG record of a BADKEY error (RFC 8945 5.2.2, 5.3.2) answering the TSIG
    record at `start`: kdns holds no keys, so every key is unknown to it."""
    _, off, owner = read_name(data, start)
    _, pos, algorithm = read_name(data, off + 10)
    if pos + 10 > len(data):
        raise WireError("truncated TSIG record")
    mac_len = struct.unpack_from("!H", data, pos + 8)[0]
    if pos + 12 + mac_len > len(data):
        raise WireError("truncated TSIG record")
    time_fudge = data[pos : pos + 8]
    original_id = data[pos + 10 + mac_len : pos + 12 + mac_len]
    rdata = algorithm + time_fudge + b"\x00\x00" + original_id + struct.pack("!HH", BADKEY, 0)
    return owner + _RR_FIXED.pack(TSIG, CLASS_ANY, 0, len(rdata)) + rdata


def decode_query(data: bytes, proto: str, client: str, port: int = 0) -> Request | bytes | None:
    """Screen and decode a query.

    Returns a Request, or ready reply bytes (FORMERR/NOTIMP/BADVERS) when the header is readable
    but the query cannot be served, or None when the packet should be dropped silently.
    """
    if len(data) < 12:
        return None
    mid, flags, qd, an, ns, ar = _HEADER.unpack_from(data, 0)
    if flags & FLAG_QR:
        return None  # a response: never answer it (reflection loops)
    opcode = (flags >> 11) & 0xF
    if qd != 1:
        return _error_reply(data, FORMERR)
    # Question: an uncompressed name (a pointer in a query's question is malformed).
    off = 12
    size = len(data)
    while True:
        if off >= size:
            return _error_reply(data, FORMERR)
        n = data[off]
        if n == 0:
            off += 1
            break
        off += 1 + n
        # A pointer or reserved label type, a label past the end, or a name over 255 bytes.
        if n & 0xC0 or off > size or off > 266:
            return _error_reply(data, FORMERR)
    if off + 4 > len(data):
        return _error_reply(data, FORMERR)
    qname_wire = data[12:off]
    qtype, qclass = _Q_FIXED.unpack_from(data, off)
    question = data[12 : off + 4]
    off += 4
    if opcode != 0:
        return _error_reply(data, NOTIMP, question)
    edns: Edns | None = None
    authority: tuple[RR, ...] = ()
    if an or ns or ar:
        if an > 1 or ns > 1 or ar > 2 or (an + ns + ar) * 11 > len(data) - off:
            return _error_reply(data, FORMERR, question)
        try:
            for i in range(an + ns + ar):
                start = off
                rr, off = _read_rr(data, off)
                if rr.rtype == TSIG:
                    if i != an + ns + ar - 1 or i < an + ns:
                        raise WireError("TSIG is not the last additional record")
                    badkey = _tsig_badkey(data, start)
                    return _error_reply(data, NOTAUTH, question, badkey)
                if an <= i < an + ns:
                    authority += (rr,)  # an IXFR's SOA (RFC 1995)
                if rr.rtype == OPT:
                    if i < an + ns or edns is not None:
                        raise WireError("misplaced OPT")
                    edns = _read_edns(rr)
        except WireError:
            return _error_reply(data, FORMERR, question)
    qname = _qname_text(qname_wire)
    # Positional: keyword construction of a slotted dataclass costs more (every query).
    request = Request(
        mid, qname, qname.lower(), qtype, qclass, flags, edns, proto, client, port,
        qname_wire, len(data), authority,
    )  # fmt: skip
    if edns is not None and edns.version > 0:
        return encode(request, Reply(rcode=BADVERS))
    return request


def _qname_text(wire: bytes) -> str:
    labels = []
    i = 0
    while wire[i]:
        n = wire[i]
        labels.append(wire[i + 1 : i + 1 + n])
        i += 1 + n
    if not labels:
        return "."
    joined = b".".join(labels)
    if joined.count(b".") != len(labels) - 1 or b"\\" in joined:
        # A label holds a dot or a backslash: those are escaped label by label.
        return ".".join(names.label_from_wire(label) for label in labels) + "."
    return joined.decode("latin-1") + "."


class _Writer:
    """Appends names and records to a message, compressing owner names against earlier ones.

    Names are compared as written (letter case kept). The question's suffixes are not
    registered up front: a name that ends the question (the commonest owner) is found by a
    string comparison, its offset being its position in the question's text (for a name
    without escapes, label i starts at the same index in text and wire form)."""

    __slots__ = ("buf", "offsets", "question")

    def __init__(self, buf: bytearray, qname: str = "") -> None:
        self.buf = buf
        self.offsets: dict[str, int] = {}
        # The question's text without its final dot, when it can be matched that way.
        self.question = qname[:-1] if qname not in ("", ".") and "\\" not in qname else ""
        if qname != "." and not self.question and qname:
            _register_question(self, qname)

    def name(self, text: str) -> None:
        labels = names.split(text)
        q = self.question
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            ptr = self.offsets.get(suffix)
            if ptr is None and q and (q == suffix or q.endswith("." + suffix)):
                ptr = 12 + len(q) - len(suffix)
            if ptr is not None:
                self.buf += struct.pack("!H", 0xC000 | ptr)
                return
            if len(self.buf) < 0x3FFF:
                self.offsets[suffix] = len(self.buf)
            raw = names.label_to_wire(labels[i])
            self.buf.append(len(raw))
            self.buf += raw
        self.buf.append(0)

    def rr(self, rr: RR) -> None:
        self.name(rr.name)
        self.buf += _RR_FIXED.pack(rr.rtype, rr.rclass, rr.ttl, len(rr.rdata))
        self.buf += rr.rdata


def encode(request: Request, reply: Reply) -> bytes:
    """Wire form of `reply` to `request`, truncated to what the client accepts.

    Records are kept in order (answer, authority, additional) while they fit; if any is dropped
    the TC bit is set, as CoreDNS's scrub does. The question and the OPT record always stay.
    """
    return encode_spans(request, reply, None)


Span = tuple[int, int, int, int, int]  # (start, end, rtype, offset of the TTL, section)


def encode_spans(request: Request, reply: Reply, spans: list[Span] | None) -> bytes:
    """`encode`, also appending a Span for each record kept (sections 0-2; not the OPT)."""
    flags = FLAG_QR | (request.flags & (0x7800 | FLAG_RD | FLAG_CD)) | (reply.rcode & 0xF)
    if reply.aa:
        flags |= FLAG_AA
    if reply.ra:
        flags |= FLAG_RA
    if reply.ad and (request.do or request.flags & FLAG_AD):
        flags |= FLAG_AD
    tc = reply.tc
    opt = b""
    limit = request.max_size
    if request.edns is not None or reply.options:
        ext = (reply.rcode >> 4) & 0xFF
        if request.edns is not None:
            size = max(request.edns.udp_size, 512)
            do = request.edns.do
            if reply.size_cap and reply.size_cap < size:
                size = reply.size_cap
                if request.proto == "udp":
                    limit = min(limit, size)
        else:
            # Options on a reply to a query without EDNS (acl's extended error): CoreDNS adds
            # the OPT it built with SetEdns0(4096, true), so the same is sent here.
            size, do = 4096, True
        rdata = options_rdata(reply.options)
        opt_ttl = (ext << 24) | (EDNS_DO if do else 0)
        opt = b"\x00" + _RR_FIXED.pack(OPT, size, opt_ttl, len(rdata)) + rdata
    buf = bytearray(12)
    writer = _Writer(buf, request.qname)
    buf += request.qname_wire
    buf += _Q_FIXED.pack(request.qtype, request.qclass)
    limit -= len(opt)
    counts = [0, 0, 0]
    full = False
    for idx, section in enumerate((reply.answer, reply.authority, reply.additional)):
        for rr in section:
            mark = len(buf)
            saved = dict(writer.offsets) if len(buf) + 255 + len(rr.rdata) > limit else None
            writer.rr(rr)
            if spans is not None and len(buf) <= limit:
                spans.append((mark, len(buf), rr.rtype, len(buf) - len(rr.rdata) - 6, idx))
            if len(buf) > limit:
                del buf[mark:]
                if saved is not None:
                    writer.offsets = saved
                full = True
                break
            counts[idx] += 1
        if full:
            tc = True
            break
    if tc:
        flags |= FLAG_TC
    arcount = counts[2] + (1 if opt else 0)
    _HEADER.pack_into(buf, 0, request.id, flags, 1, counts[0], counts[1], arcount)
    buf += opt
    return bytes(buf)


def options_rdata(options: tuple[EdnsOption, ...]) -> bytes:
    """The rdata of an OPT record holding `options` (code, length, data each)."""
    return b"".join(struct.pack("!HH", c, len(d)) + d for c, d in options)


def _register_question(writer: _Writer, qname: str) -> None:
    labels = names.split(qname)
    off = 12
    for i in range(len(labels)):
        writer.offsets.setdefault(".".join(labels[i:]), off)
        off += 1 + len(names.label_to_wire(labels[i]))


def encode_query(
    qname: str,
    qtype: int,
    mid: int,
    *,
    rd: bool = True,
    edns_size: int | None = 1232,
    do: bool = False,
    cd: bool = False,
    qclass: int = 1,
    options: tuple[EdnsOption, ...] = (),
) -> bytes:
    """A query message, for the forwarder, health checks and tools (no OPT record when
    `edns_size` is None)."""
    flags = (FLAG_RD if rd else 0) | (FLAG_CD if cd else 0)
    with_opt = edns_size is not None
    out = bytearray(_HEADER.pack(mid, flags, 1, 0, 0, 1 if with_opt else 0))
    out += names.to_wire(qname)
    out += _Q_FIXED.pack(qtype, qclass)
    if with_opt:
        rdata = options_rdata(options)
        out += b"\x00" + _RR_FIXED.pack(OPT, edns_size, EDNS_DO if do else 0, len(rdata)) + rdata
    return bytes(out)

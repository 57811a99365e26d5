"""The checks of ISC's DNS compliance tester (`genreport`, RFC 8906) against kdns's zone apex.

genreport itself is not packaged for Debian, so its default EDNS test list is reproduced here
with dnspython as the client: plain DNS, EDNS, EDNS version 1, unknown options and flags, DO,
a small buffer, option lists, and EDNS over TCP. Each must get the reply RFC 6891 asks for.
Its `opcode`, `opcodeflg` and `dnswkk` checks follow: an unknown opcode, and a TSIG-signed query.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import pytest

from tests.support.client import make_query
from tests.support.server import Running, running_kdns, with_bundled_cluster

COREFILE = """\
.:PORT {
    bind 127.0.0.1
    kubernetes cluster.local {
        snapshot cluster.yaml
    }
}
"""
ZONE = "cluster.local."


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Running]:
    with_bundled_cluster(tmp_path)
    async with running_kdns(COREFILE, tmp_path) as running:
        yield running


async def send(srv: Running, q: dns.message.Message, tcp: bool = False) -> dns.message.Message:
    if tcp:
        return await dns.asyncquery.tcp(q, "127.0.0.1", port=srv.port, timeout=3)
    return await dns.asyncquery.udp(q, "127.0.0.1", port=srv.port, timeout=3)


def soa_answer(msg: dns.message.Message) -> bool:
    return (
        msg.rcode() == dns.rcode.NOERROR
        and len(msg.answer) == 1
        and msg.answer[0].rdtype == dns.rdatatype.SOA
        and bool(msg.flags & dns.flags.AA)
    )


async def test_dns_plain(srv: Running) -> None:
    msg = await send(srv, make_query(ZONE, "SOA", edns=None, rd=False))
    assert soa_answer(msg) and msg.edns == -1


async def test_edns(srv: Running) -> None:
    msg = await send(srv, make_query(ZONE, "SOA", edns=0, rd=False))
    assert soa_answer(msg) and msg.edns == 0


async def test_edns1_is_badvers_with_version_0(srv: Running) -> None:
    msg = await send(srv, make_query(ZONE, "SOA", edns=1, rd=False))
    assert msg.rcode() == dns.rcode.BADVERS and msg.edns == 0 and not msg.answer


async def test_edns1_with_unknown_option(srv: Running) -> None:
    q = make_query(ZONE, "SOA", edns=1, rd=False, options=[dns.edns.GenericOption(100, b"")])
    msg = await send(srv, q)
    assert msg.rcode() == dns.rcode.BADVERS and msg.edns == 0


async def test_unknown_option_is_ignored_and_not_echoed(srv: Running) -> None:
    q = make_query(ZONE, "SOA", rd=False, options=[dns.edns.GenericOption(100, b"")])
    msg = await send(srv, q)
    assert soa_answer(msg) and msg.edns == 0 and not msg.options


async def test_unknown_edns_flag_is_cleared(srv: Running) -> None:
    q = make_query(ZONE, "SOA", rd=False)
    q.ednsflags |= 0x4000  # an undefined flag in the OPT TTL field
    msg = await send(srv, q)
    assert soa_answer(msg) and msg.ednsflags & 0x7FFF == 0


async def test_do_bit_is_echoed(srv: Running) -> None:
    q = make_query(ZONE, "SOA", rd=False)
    q.ednsflags |= dns.flags.DO
    msg = await send(srv, q)
    assert soa_answer(msg) and msg.ednsflags & dns.flags.DO


async def test_small_buffer_is_honoured(srv: Running) -> None:
    msg = await send(srv, make_query(ZONE, "NS", rd=False, payload=512))
    assert msg.rcode() == dns.rcode.NOERROR and len(msg.to_wire()) <= 512


async def test_option_list(srv: Running) -> None:
    opts: list[dns.edns.Option] = [
        dns.edns.GenericOption(dns.edns.NSID, b""),
        dns.edns.ECSOption("192.0.2.0", 24),
        dns.edns.GenericOption(dns.edns.COOKIE, b"\x01" * 8),
        dns.edns.GenericOption(dns.edns.EXPIRE, b""),
    ]
    msg = await send(srv, make_query(ZONE, "SOA", rd=False, options=opts))
    assert soa_answer(msg) and msg.edns == 0


async def test_edns_over_tcp(srv: Running) -> None:
    msg = await send(srv, make_query(ZONE, "SOA", rd=False), tcp=True)
    assert soa_answer(msg) and msg.edns == 0


async def test_unknown_type_gets_nodata_not_silence(srv: Running) -> None:
    msg = await send(srv, make_query(ZONE, 1234, rd=False))
    assert msg.rcode() == dns.rcode.NOERROR and not msg.answer and msg.authority


async def test_zflag_is_cleared(srv: Running) -> None:
    # genreport's "zflag": the reserved header bit Z set in the query; must not be echoed.
    q = make_query(ZONE, "SOA", edns=None, rd=False)
    q.flags |= 0x0040
    msg = await send(srv, q)
    assert soa_answer(msg) and not msg.flags & 0x0040


async def test_aa_in_query_is_harmless(srv: Running) -> None:
    # genreport's "aa": AA set in the query.
    q = make_query(ZONE, "SOA", edns=None, rd=False)
    q.flags |= dns.flags.AA
    assert soa_answer(await send(srv, q))


async def test_rd_in_query_is_harmless(srv: Running) -> None:
    # genreport's "rd": RD set; an authoritative answer all the same.
    msg = await send(srv, make_query(ZONE, "SOA", edns=None, rd=True))
    assert soa_answer(msg) and msg.flags & dns.flags.RD


# genreport's opcode checks: an unknown opcode gets NOTIMP, the question and opcode echoed and
# (as miekg/dns answers for CoreDNS) no other flag, no records, no OPT.
@pytest.mark.parametrize("flags", [0, 0x07B0], ids=["opcode", "opcodeflg"])
async def test_unknown_opcode_is_notimp(srv: Running, flags: int) -> None:
    q = make_query(ZONE, "SOA", edns=None, rd=False)
    q.set_opcode(15)  # type: ignore[arg-type]
    q.flags |= flags  # opcodeflg: TC, RD, RA, Z, AD, CD all set on the query
    msg = await send(srv, q)
    assert msg.rcode() == dns.rcode.NOTIMP
    assert msg.opcode() == 15
    assert msg.flags & 0x87F0 == dns.flags.QR  # opcode and rcode bits aside: QR alone
    assert [r.name.to_text() for r in msg.question] == [ZONE]
    assert not msg.answer and not msg.authority and not msg.additional and msg.edns == -1


# genreport's dnswkk: a query signed with a key the server does not know gets NOTAUTH with an
# unsigned TSIG record carrying BADKEY (RFC 8945 5.2.2); dnspython reports that as PeerBadKey.
async def test_tsig_with_an_unknown_key_is_badkey(srv: Running) -> None:
    keyring = dns.tsigkeyring.from_text({"unknown-key.": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    for tcp in (False, True):
        q = make_query(ZONE, "SOA")
        q.use_tsig(keyring, keyname="unknown-key.")
        with pytest.raises(dns.tsig.PeerBadKey):
            await send(srv, q, tcp=tcp)
    q = make_query(ZONE, "SOA", edns=None)
    q.use_tsig(keyring, keyname="unknown-key.")
    out = await asyncio.to_thread(_exchange_raw, srv.port, q.to_wire())
    mid, flags, qd, an, ns, ar = struct.unpack_from("!6H", out)
    assert (mid, flags & 0xF, qd, an, ns, ar) == (q.id, 9, 1, 0, 0, 1)  # NOTAUTH
    assert out.endswith(struct.pack("!HHH", q.id, 17, 0))  # original ID, BADKEY, no other data
    assert b"\x0bunknown-key\x00" in out and b"hmac-sha256" in out


def _exchange_raw(port: int, data: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(data, ("127.0.0.1", port))
        return s.recv(4096)

"""`forward` sends the client's query on as CoreDNS does: its EDNS record (buffer size, DO bit,
options) as the client sent it, and no EDNS at all when the client sent none."""

from __future__ import annotations

from pathlib import Path

import dns.asyncquery
import dns.edns
import dns.flags
import dns.rcode

from tests.support.client import ask, make_query, rrs
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream

LOCAL_OPTION = 65001  # an option code from the local/experimental range (RFC 6891)


async def test_the_clients_edns_record_goes_upstream_unchanged(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = f".:PORT {{\n bind 127.0.0.1\n forward . 127.0.0.1:{up.port}\n}}\n"
        async with running_kdns(corefile, tmp_path) as srv:
            option = dns.edns.GenericOption(LOCAL_OPTION, b"kdns")
            msg = await ask(srv.port, "www.example.test.", payload=4000, options=[option])
            assert msg.rcode() == dns.rcode.NOERROR
            assert [r[2] for r in rrs(msg)] == ["192.0.2.10"]
            plain = await ask(srv.port, "www.example.test.", "TXT", edns=None, tcp=True)
            assert plain.rcode() == dns.rcode.NOERROR
        with_edns, without = up.queries
        assert with_edns.edns == 0
        assert with_edns.payload == 4000
        assert [(o.otype, o.to_wire()) for o in with_edns.options] == [(LOCAL_OPTION, b"kdns")]
        assert not with_edns.ednsflags & dns.flags.DO
        assert without.edns == -1  # no OPT record at all
        assert without.flags & dns.flags.RD


async def test_the_do_bit_and_a_small_buffer_size_pass_through(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = f".:PORT {{\n bind 127.0.0.1\n forward . 127.0.0.1:{up.port}\n}}\n"
        async with running_kdns(corefile, tmp_path) as srv:
            query = make_query("www.example.test.", payload=512)
            query.want_dnssec(True)
            msg = await dns.asyncquery.tcp(query, "127.0.0.1", port=srv.port, timeout=3)
            assert msg.rcode() == dns.rcode.NOERROR
        (sent,) = up.queries
        assert sent.payload == 512
        assert sent.ednsflags & dns.flags.DO

"""`rewrite edns0` as a handler: CoreDNS's rewrite_test.go EDNS0 tables (local, nsid, variables,
subnet), the OPT record a query without EDNS gets for the chain, `unset` and `revert`, and what
per-client options tell the fast path."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

from kdns.dns.message import NOERROR, Edns, Reply, Request
from kdns.plugins import memo
from kdns.plugins.rewrite import RewritePlugin
from tests.support.plugins import Recorder, context, parse_directive, request


def plugin(*lines: str) -> RewritePlugin:
    return RewritePlugin(parse_directive("\n".join(lines), "rewrite"), context())


def edns_of(req: Request) -> list[tuple[int, bytes]]:
    assert req.edns is not None
    return list(req.edns.options)


def with_edns(req: Request, *options: tuple[int, bytes]) -> Request:
    return replace(req, edns=Edns(1232, options=options))


# rewrite_test.go TestRewriteEDNS0Local and TestEdns0LocalMultiRule.
@pytest.mark.parametrize(
    ("rule", "given", "sent"),
    [
        ("local set 0xffee 0xabcdef", (), [(0xFFEE, b"\xab\xcd\xef")]),
        ("local append 0xffee abcdefghijklmnop", (), [(0xFFEE, b"abcdefghijklmnop")]),
        ("local replace 0xffee abcdefghijklmnop", (), None),
        ("nsid set", (), [(3, b"")]),
        ("nsid append", (), [(3, b"")]),
        ("nsid replace", (), None),
        ("local set 0xffee new", ((0xFFEE, b"old"),), [(0xFFEE, b"new")]),
        ("local append 0xffee new", ((0xFFEE, b"old"),), None),
        ("local unset 0xffee", ((0xFFEE, b"old"), (3, b"")), [(3, b"")]),
    ],
)
async def test_edns0_local_and_nsid(
    rule: str, given: tuple[tuple[int, bytes], ...], sent: list[tuple[int, bytes]] | None
) -> None:
    p = plugin(f"rewrite edns0 {rule}")
    nxt = Recorder()
    req = with_edns(request("example.com."), *given) if given else request("example.com.")
    await p(req, nxt)
    if sent is None:
        assert nxt.seen[0] is req  # the rule did not apply: the request goes on as it came
    else:
        assert edns_of(nxt.seen[0]) == sent


async def test_edns0_on_a_query_without_edns_adds_an_opt_for_the_chain_only() -> None:
    p = plugin("rewrite edns0 local set 0xffee abc")
    nxt = Recorder()
    await p(replace(request("example.com."), edns=None), nxt)
    assert nxt.seen[0].edns == Edns(4096, options=((0xFFEE, b"abc"),))


async def test_edns0_multi_rule_first_one_wins_on_stop() -> None:
    p = plugin("rewrite edns0 local replace 0xffee abcdef", "rewrite edns0 local set 0xffee fedcba")
    nxt = Recorder()
    await p(request("example.com."), nxt)
    await p(with_edns(request("example.com."), (0xFFEE, b"foobar")), nxt)
    assert [edns_of(r) for r in nxt.seen] == [[(0xFFEE, b"fedcba")], [(0xFFEE, b"abcdef")]]


# TestRewriteEDNS0LocalVariable: the client is 10.240.0.1:40212.
@pytest.mark.parametrize(
    ("variable", "data"),
    [
        ("{qname}", b"example.com."),
        ("{qtype}", b"\x00\x01"),
        ("{client_ip}", bytes([10, 240, 0, 1])),
        ("{client_port}", struct.pack("!H", 40212)),
        ("{protocol}", b"udp"),
        ("{server_port}", struct.pack("!H", 1053)),
        ("{test/label}", None),  # metadata: none in kdns, so the rule does nothing
        ("{server_ip}", None),  # the block listens on every address: unknown
    ],
)
async def test_edns0_variables(variable: str, data: bytes | None) -> None:
    p = plugin(f"rewrite edns0 local set 0xffee {variable}")
    nxt = Recorder()
    req = replace(request("example.com.", client="10.240.0.1"), port=40212)
    await p(req, nxt)
    if data is None:
        assert nxt.seen[0] is req
    else:
        assert edns_of(nxt.seen[0]) == [(0xFFEE, data)]


# TestRewriteEDNS0Subnet: the address cut to the prefix, sent as long as the prefix needs.
@pytest.mark.parametrize(
    ("client", "masks", "option"),
    [
        ("10.240.0.1", "24 56", b"\x00\x01\x18\x00" + bytes([10, 240, 0])),
        ("10.240.0.1", "32 56", b"\x00\x01\x20\x00" + bytes([10, 240, 0, 1])),
        ("10.240.0.1", "0 56", b"\x00\x01\x00\x00"),
        ("fe80::42:ff:feca:4c65", "24 56", b"\x00\x02\x38\x00" + bytes([0xFE, 0x80]) + bytes(5)),
        (
            "fe80::42:ff:feca:4c65",
            "24 128",
            b"\x00\x02\x80\x00" + bytes.fromhex("fe800000000000000042" + "00fffeca4c65"),
        ),
        ("fe80::42:ff:feca:4c65", "24 0", b"\x00\x02\x00\x00"),
    ],
)
async def test_edns0_subnet(client: str, masks: str, option: bytes) -> None:
    p = plugin(f"rewrite edns0 subnet set {masks}")
    nxt = Recorder()
    token = memo.current.set(memo.Memo())
    try:
        await p(request("example.com.", client=client), nxt)
        assert memo.get().denied  # type: ignore[union-attr]  # the option is per client
    finally:
        memo.current.reset(token)
    assert edns_of(nxt.seen[0]) == [(8, option)]


async def test_a_shorter_subnet_of_the_query_is_kept() -> None:
    p = plugin("rewrite edns0 subnet set 24 56")
    nxt = Recorder()
    given = with_edns(
        request("example.com.", client="10.240.0.1"), (8, b"\x00\x01\x10\x00\x0a\xf0")
    )
    await p(given, nxt)
    assert edns_of(nxt.seen[0]) == [(8, b"\x00\x01\x10\x00\x0a\xf0")]


async def test_revert_keeps_the_option_out_of_the_reply() -> None:
    p = plugin("rewrite edns0 local set 0xffee 0xabcdef revert")

    async def echo(req: Request) -> Reply:
        return Reply(NOERROR, options=(*edns_of(req), (3, b"kdns")))

    reply = await p(request("example.org."), echo)
    assert reply.options == ((3, b"kdns"),)

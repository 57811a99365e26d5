"""`cache { serve_stale ... }` and `serve_stale_policy`: expired entries served while upstream
fails, refreshed in the background (`immediate`) or verified first (`verify`), failed refreshes
not retried within FAILURE_RECHECK. A real `forward` asks a fake upstream that the tests switch
to fail, drop or stall; the cache's clock is moved by the test, except where a real server
runs in real time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import dns.rcode

from kdns.dns.message import NOERROR, NXDOMAIN
from kdns.dns.records import rdata_text
from tests.integration.test_cache import Stack, metric, stack, ttls
from tests.support.client import ask, rrs
from tests.support.server import running_kdns
from tests.support.upstream import Behaviour, fake_upstream
from tests.support.waiting import eventually

NAME = "www.example.test."
KEY = (NAME, "A")


def addresses(reply: object) -> list[str]:
    return [rdata_text(r) for r in reply.answer]  # type: ignore[attr-defined]


async def settled(s: Stack) -> None:
    """The background refreshes have finished."""
    await eventually(lambda: not s.cache._tasks)


async def test_stale_answers_show_the_configured_ttl() -> None:
    async with stack("cache 30 {\n serve_stale 1h immediate 30s\n}") as s:
        await s.ask(NAME)
        s.up.behaviour = Behaviour(mode="servfail")
        s.clock.now += 100
        stale = await s.ask(NAME)
        assert addresses(stale) == ["192.0.2.10"] and ttls(stale) == [30]
        await settled(s)
        # Without a STALE_TTL stale answers show 0, as before.
    async with stack("cache 30 {\n serve_stale 1h immediate\n}") as s:
        await s.ask(NAME)
        s.clock.now += 100
        assert ttls(await s.ask(NAME)) == [0]
        await settled(s)


async def test_immediate_failure_recheck_holds_back_refreshes() -> None:
    async with stack("cache 30 {\n serve_stale 1h immediate 0 30s\n}") as s:
        await s.ask(NAME)
        s.up.behaviour = Behaviour(mode="servfail")
        s.clock.now += 100
        assert addresses(await s.ask(NAME)) == ["192.0.2.10"]  # stale, refresh in background
        await settled(s)
        tried = s.up.counts[KEY]
        assert tried >= 2  # the refresh did go upstream, and failed
        for _ in range(3):  # within FAILURE_RECHECK: stale, and upstream is left alone
            s.clock.now += 5
            assert addresses(await s.ask(NAME)) == ["192.0.2.10"]
            assert not s.cache._tasks
        assert s.up.counts[KEY] == tried
        s.up.behaviour = Behaviour()
        s.up.records[KEY] = ["192.0.2.99"]
        s.clock.now += 16  # 31 s after the failure: a new attempt, which succeeds
        assert addresses(await s.ask(NAME)) == ["192.0.2.10"]
        await settled(s)
        assert s.up.counts[KEY] == tried + 1
        fresh = await s.ask(NAME)
        assert addresses(fresh) == ["192.0.2.99"] and ttls(fresh) == [30]
        assert metric(s, "coredns_cache_served_stale_total") == 5


async def test_a_failed_refresh_keeps_a_stale_denial() -> None:
    async with stack("cache 3600 {\n serve_stale 1h\n}") as s:
        assert (await s.ask("nope.example.test.")).rcode == NXDOMAIN
        s.up.behaviour = Behaviour(mode="servfail")
        s.clock.now += 120  # the denial lived 60 s (the SOA MINIMUM)
        for _ in range(3):
            assert (await s.ask("nope.example.test.")).rcode == NXDOMAIN
            await settled(s)
        assert s.up.counts[("nope.example.test.", "A")] == 4  # each stale ask refreshed


async def test_verify_timeout_serves_stale_and_caches_the_late_answer() -> None:
    async with stack("cache 30 {\n serve_stale 1h verify 100ms\n}") as s:
        await s.ask(NAME)
        s.up.records[KEY] = ["192.0.2.99"]
        s.up.behaviour = Behaviour(delay=0.25)  # slower than VERIFY_TIMEOUT, within forward's
        s.clock.now += 100
        start = time.monotonic()
        stale = await s.ask(NAME)
        assert time.monotonic() - start < 0.25
        assert addresses(stale) == ["192.0.2.10"] and ttls(stale) == [0]
        await settled(s)  # the verify went on and stored what came back
        assert addresses(await s.ask(NAME)) == ["192.0.2.99"]
        s.up.behaviour = Behaviour()
        s.up.records[KEY] = ["192.0.2.77"]
        s.clock.now += 100
        assert addresses(await s.ask(NAME)) == ["192.0.2.77"]  # upstream in time: fresh


async def test_verify_requests_share_the_refresh_under_way() -> None:
    async with stack("cache 30 {\n serve_stale 1h verify 2s 0 30s\n}") as s:
        await s.ask(NAME)
        s.up.records[KEY] = ["192.0.2.99"]
        s.up.behaviour = Behaviour(delay=0.2)
        s.clock.now += 100
        replies = await asyncio.gather(*(s.ask(NAME) for _ in range(5)))
        assert [addresses(r) for r in replies] == [["192.0.2.99"]] * 5
        assert s.up.counts[KEY] == 2  # the first fill and one verify for all five


async def test_verify_failure_recheck_serves_stale_without_asking() -> None:
    async with stack("cache 30 {\n serve_stale 1h verify 0 0 30s\n}") as s:
        await s.ask(NAME)
        s.up.behaviour = Behaviour(mode="servfail")
        s.clock.now += 100
        assert addresses(await s.ask(NAME)) == ["192.0.2.10"]  # verified: failed: stale
        tried = s.up.counts[KEY]
        assert addresses(await s.ask(NAME)) == ["192.0.2.10"]
        assert s.up.counts[KEY] == tried  # within FAILURE_RECHECK: not asked again
        s.clock.now += 31
        await s.ask(NAME)
        assert s.up.counts[KEY] > tried
    # Plain `verify` (no FAILURE_RECHECK) asks upstream for every stale request.
    async with stack("cache 30 {\n serve_stale 1h verify\n}") as s:
        await s.ask(NAME)
        s.up.behaviour = Behaviour(mode="servfail")
        s.clock.now += 100
        await s.ask(NAME)
        tried = s.up.counts[KEY]
        await s.ask(NAME)
        assert s.up.counts[KEY] > tried


async def test_prefer_positive_keeps_the_last_good_answer_over_a_denial() -> None:
    policy = "cache 30 {\n serve_stale 1h verify\n serve_stale_policy prefer_positive\n}"
    async with stack(policy) as s:
        await s.ask(NAME)
        del s.up.records[KEY]  # the name is gone upstream: NXDOMAIN
        s.up.records.pop((NAME, "TXT"))
        s.clock.now += 100
        for _ in range(2):
            reply = await s.ask(NAME)
            assert reply.rcode == NOERROR and addresses(reply) == ["192.0.2.10"]
        s.up.records[KEY] = ["192.0.2.99"]  # an answer again: it replaces the stale one
        assert addresses(await s.ask(NAME)) == ["192.0.2.99"]
        s.clock.now += 3700  # past the stale window the positive answer is gone
        del s.up.records[KEY]
        assert (await s.ask(NAME)).rcode == NXDOMAIN
    async with stack("cache 30 {\n serve_stale 1h verify\n}") as s:  # without the policy
        await s.ask(NAME)
        del s.up.records[KEY]
        s.up.records.pop((NAME, "TXT"))
        s.clock.now += 100
        assert (await s.ask(NAME)).rcode == NXDOMAIN


async def test_stale_serving_through_a_running_server(tmp_path: Path) -> None:
    """Real sockets and real time: a 1 s entry goes stale, the upstream stops answering, the
    server keeps answering from the stale entry (TTL 30) without waiting on the upstream."""
    async with fake_upstream() as up:
        up.add(NAME, "A", "192.0.2.10")
        corefile = (
            f".:PORT {{\n bind 127.0.0.1\n forward . 127.0.0.1:{up.port}\n"
            " cache 1 {\n  serve_stale 1h immediate 30s 5m\n }\n}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            msg = await ask(srv.port, NAME, "A")
            assert [r[2] for r in rrs(msg)] == ["192.0.2.10"]
            up.behaviour = Behaviour(mode="drop")

            async def stale() -> bool:
                msg = await ask(srv.port, NAME, "A", timeout=0.5)
                return msg.answer[0].ttl == 30

            await eventually(stale, timeout=5)
            cache = srv.app.instance.block_plugins[0][1]["cache"]
            await eventually(lambda: not cache._tasks, timeout=15)  # the refresh gave up
            tried = up.counts[KEY]
            for _ in range(5):  # FAILURE_RECHECK 5m: answered at once, upstream not asked
                start = time.monotonic()
                msg = await ask(srv.port, NAME, "A", timeout=0.5)
                assert time.monotonic() - start < 0.5
                assert msg.rcode() == dns.rcode.NOERROR
                assert [r[2] for r in rrs(msg)] == ["192.0.2.10"] and msg.answer[0].ttl == 30
                assert not cache._tasks
            assert up.counts[KEY] == tried

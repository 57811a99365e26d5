"""`cache` in front of a real `forward` and fake upstreams, with a clock the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import dns.rcode
import pytest
from prometheus_client import CollectorRegistry

from kdns.corefile import CorefileError
from kdns.dns.message import NOERROR, NXDOMAIN, SERVFAIL, Reply, Request
from kdns.dns.records import a, rdata_text
from kdns.plugins import memo
from kdns.plugins.base import Handler
from kdns.plugins.cache import CacheConfig, CachePlugin
from kdns.plugins.forward import ForwardConfig, ForwardPlugin
from kdns.server import chain
from tests.support.client import ask, rrs
from tests.support.plugins import context, parse_directive, request
from tests.support.server import running_kdns
from tests.support.upstream import Behaviour, FakeUpstream, fake_upstream
from tests.support.waiting import eventually


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stack:
    cache: CachePlugin
    forward: ForwardPlugin
    up: FakeUpstream
    clock: Clock
    registry: CollectorRegistry

    async def ask(
        self, qname: str, qtype: str = "A", *, do: bool = False, cd: bool = False
    ) -> Reply:
        handler = chain.build([self.cache, self.forward])
        return await handler(request(qname, qtype, do=do, cd=cd))


@contextlib.asynccontextmanager
async def stack(cache_text: str = "cache 30", **upstream: object) -> AsyncIterator[Stack]:
    async with fake_upstream(**upstream) as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        up.add("www.example.test.", "TXT", '"hello"')
        reg = CollectorRegistry()
        clock = Clock()
        ctx = context(reg)
        fcfg: ForwardConfig = parse_directive(f"forward . 127.0.0.1:{up.port}", "forward")
        fwd = ForwardPlugin(replace(fcfg, read_timeout=0.3, timeout=0.6), ctx)
        ccfg: CacheConfig = parse_directive(cache_text, "cache")
        s = Stack(CachePlugin(ccfg, ctx, clock=clock), fwd, up, clock, reg)
        async with s.cache.running(), fwd.running():
            yield s


def ttls(reply: Reply) -> list[int]:
    return [r.ttl for r in (*reply.answer, *reply.authority)]


def metric(s: Stack, name: str, **labels: str) -> float | None:
    base = {"server": "dns://:1053", "zones": ".", "view": ""}
    return s.registry.get_sample_value(name, {**base, **labels})


async def test_positive_answers_are_cached_with_ttls_counting_down() -> None:
    async with stack() as s:
        first = await s.ask("www.example.test.")
        assert [rdata_text(r) for r in first.answer] == ["192.0.2.10"]
        assert ttls(first) == [30]  # upstream says 300; the cache caps at 30
        s.clock.now += 10.4
        second = await s.ask("WWW.Example.TEST.")  # key is case-folded
        assert ttls(second) == [20]
        assert s.up.counts[("www.example.test.", "A")] == 1
        s.clock.now += 19.7  # expired now
        third = await s.ask("www.example.test.")
        assert ttls(third) == [30]
        assert s.up.counts[("www.example.test.", "A")] == 2
        assert metric(s, "coredns_cache_requests_total") == 3
        assert metric(s, "coredns_cache_hits_total", type="success") == 1
        assert metric(s, "coredns_cache_misses_total") == 2
        assert metric(s, "coredns_cache_entries", type="success") == 1


async def test_negative_answers_follow_rfc2308_and_are_not_forwarded_again() -> None:
    async with stack("cache 3600") as s:
        first = await s.ask("nope.example.test.")
        assert first.rcode == NXDOMAIN
        # The fake upstream's SOA: TTL 60, MINIMUM 60 -> 60 s of negative caching.
        assert ttls(first) == [60]
        s.clock.now += 59
        again = await s.ask("nope.example.test.")
        assert again.rcode == NXDOMAIN and ttls(again) == [1]
        assert s.up.counts[("nope.example.test.", "A")] == 1
        nodata = await s.ask("www.example.test.", "AAAA")
        assert nodata.rcode == NOERROR and nodata.answer == ()
        await s.ask("www.example.test.", "AAAA")
        assert s.up.counts[("www.example.test.", "AAAA")] == 1
        assert metric(s, "coredns_cache_hits_total", type="denial") == 2
        s.clock.now += 2
        await s.ask("nope.example.test.")
        assert s.up.counts[("nope.example.test.", "A")] == 2


async def test_do_and_cd_bits_are_part_of_the_key() -> None:
    async with stack() as s:
        await s.ask("www.example.test.")
        await s.ask("www.example.test.", do=True)
        await s.ask("www.example.test.", cd=True)
        await s.ask("www.example.test.", do=True)
        assert s.up.counts[("www.example.test.", "A")] == 3


async def test_servfail_is_cached_briefly_and_never_truncated_replies() -> None:
    async with stack(behaviour=Behaviour(mode="servfail")) as s:
        assert (await s.ask("www.example.test.")).rcode == SERVFAIL
        s.clock.now += 4
        assert (await s.ask("www.example.test.")).rcode == SERVFAIL
        assert s.up.counts[("www.example.test.", "A")] == 1
        s.clock.now += 1.5
        await s.ask("www.example.test.")
        assert s.up.counts[("www.example.test.", "A")] == 2

    calls = 0

    async def truncated(req: Request) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(NOERROR, (a(req.qname, 300, "192.0.2.1"),), tc=True)

    cache = CachePlugin(parse_directive("cache 30", "cache"), context(), clock=Clock())
    for _ in range(3):
        assert (await cache(request("big.example.test."), truncated)).tc
    assert calls == 3


async def test_prefetch_refreshes_popular_entries_before_they_expire() -> None:
    async with stack("cache 30 {\n prefetch 2 1m 10%\n}") as s:
        await s.ask("www.example.test.")  # miss: stored at t0 for 30 s
        s.clock.now += 10
        await s.ask("www.example.test.")  # hit 1
        s.clock.now += 17.5
        reply = await s.ask("www.example.test.")  # hit 2, 2 s left <= 10% of 30 (3 s)
        assert ttls(reply) == [3]  # still the cached answer
        await eventually(lambda: s.up.counts[("www.example.test.", "A")] == 2)
        await eventually(lambda: metric(s, "coredns_cache_prefetch_total") == 1)
        s.clock.now += 5  # the old entry would have expired; the prefetched one lives on
        reply = await s.ask("www.example.test.")
        assert ttls(reply) == [25]
        assert s.up.counts[("www.example.test.", "A")] == 2


async def test_no_prefetch_for_rarely_used_entries() -> None:
    async with stack("cache 30 {\n prefetch 3 5s\n}") as s:
        await s.ask("www.example.test.")
        for _ in range(4):
            s.clock.now += 6.5  # gaps longer than the 5 s window reset the count
            await s.ask("www.example.test.")
        assert s.up.counts[("www.example.test.", "A")] == 1


async def test_serve_stale_answers_from_expired_entries_while_upstream_is_down() -> None:
    async with stack("cache 30 {\n serve_stale 1h\n}") as s:
        await s.ask("www.example.test.")
        s.up.behaviour = Behaviour(mode="drop")
        s.clock.now += 100
        stale = await s.ask("www.example.test.")
        assert [rdata_text(r) for r in stale.answer] == ["192.0.2.10"] and ttls(stale) == [0]
        # The background refresh failed (SERVFAIL); the stale answer must still be there.
        await eventually(lambda: not s.cache._tasks)
        assert s.up.counts[("www.example.test.", "A")] > 1  # the refresh did go upstream
        again = await s.ask("www.example.test.")
        assert [rdata_text(r) for r in again.answer] == ["192.0.2.10"]
        assert metric(s, "coredns_cache_served_stale_total") == 2
        s.clock.now += 3600  # past the stale window: gone
        assert (await s.ask("www.example.test.")).rcode == SERVFAIL


async def test_serve_stale_verify_prefers_a_fresh_answer() -> None:
    async with stack("cache 30 {\n serve_stale 10m verify\n}") as s:
        await s.ask("www.example.test.")
        s.up.records[("www.example.test.", "A")] = ["192.0.2.99"]
        s.clock.now += 60
        fresh = await s.ask("www.example.test.")
        assert [rdata_text(r) for r in fresh.answer] == ["192.0.2.99"]
        s.up.behaviour = Behaviour(mode="drop")
        s.clock.now += 60
        stale = await s.ask("www.example.test.")
        assert [rdata_text(r) for r in stale.answer] == ["192.0.2.99"] and ttls(stale) == [0]


async def test_disable_keepttl_and_capacity() -> None:
    async with stack("cache 30 {\n disable success example.test\n}") as s:
        await s.ask("www.example.test.")
        await s.ask("www.example.test.")
        assert s.up.counts[("www.example.test.", "A")] == 2
        await s.ask("nope.example.test.")
        await s.ask("nope.example.test.")
        assert s.up.counts[("nope.example.test.", "A")] == 1  # denial still cached
    async with stack("cache 30 {\n keepttl\n}") as s:
        await s.ask("www.example.test.")
        s.clock.now += 10
        assert ttls(await s.ask("www.example.test.")) == [300]
        assert s.up.counts[("www.example.test.", "A")] == 1
    async with stack("cache {\n success 2\n}") as s:
        for name in ("a", "b", "c"):
            await s.ask(f"{name}.example.test.", "TXT")
        await s.ask("www.example.test.", "TXT")
        await s.ask("www.example.test.", "TXT")
        await s.ask("www.example.test.", "TXT")
        assert metric(s, "coredns_cache_evictions_total", type="success") is not None
        assert metric(s, "coredns_cache_entries", type="success") == 1


async def test_a_full_cache_admits_names_asked_twice_and_keeps_its_hot_set() -> None:
    async with stack("cache {\n denial 4\n}") as s:
        for _ in range(3):
            await s.ask("hot.example.test.")  # a denial asked all day
        for i in range(40):  # a flood of names asked once
            await s.ask(f"flood{i}.example.test.")
        await s.ask("hot.example.test.")
        assert s.up.counts[("hot.example.test.", "A")] == 1  # never pushed out
        assert metric(s, "coredns_cache_entries", type="denial") == 4
        for _ in range(3):  # a new name asked again earns its place
            await s.ask("again.example.test.")
        assert s.up.counts[("again.example.test.", "A")] == 2


async def test_min_ttl_raises_short_upstream_ttls_but_not_index_answers() -> None:
    async with stack("cache 30", ttl=1) as s:
        first = await s.ask("www.example.test.")
        assert ttls(first) == [5]  # MINTTL 5 by default
        s.clock.now += 4
        await s.ask("www.example.test.")
        assert s.up.counts[("www.example.test.", "A")] == 1

    calls = 0

    async def index(req: Request) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(NOERROR, (a(req.qname, 0, "10.0.0.1"),), aa=True, plugin="kubernetes")

    cache = CachePlugin(parse_directive("cache 30", "cache"), context(), clock=Clock())
    for _ in range(3):
        await cache(request("svc.ns.svc.cluster.local."), index)
    assert calls == 3  # ttl 0 from the index: never cached


SNAPSHOT = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {type: ClusterIP, clusterIP: ADDR, clusterIPs: [ADDR], ports: [{name: http, port: 80}]}
"""


@pytest.mark.parametrize(
    "cache_line",
    [
        "cache 30 {\n disable success cluster.local\n disable denial cluster.local\n }",
        "cache 30",
    ],
)
async def test_cluster_answers_never_outlive_an_index_change_by_more_than_ttl(
    tmp_path: Path, cache_line: str
) -> None:
    snap = tmp_path / "cluster.yaml"
    snap.write_text(SNAPSHOT.replace("ADDR", "10.96.0.50"))
    corefile = (
        ".:PORT {\n    bind 127.0.0.1\n"
        "    kubernetes cluster.local {\n        snapshot cluster.yaml\n        ttl 1\n    }\n"
        f"    {cache_line}\n}}\n"
    )
    async with running_kdns(corefile, tmp_path) as srv:
        msg = await ask(srv.port, "web.shop.svc.cluster.local.", "A")
        assert [r[2] for r in rrs(msg)] == ["10.96.0.50"]
        snap.write_text(SNAPSHOT.replace("ADDR", "10.96.0.51"))

        async def changed() -> bool:
            msg = await ask(srv.port, "web.shop.svc.cluster.local.", "A")
            return [r[2] for r in rrs(msg)] == ["10.96.0.51"]

        # The snapshot is re-read within ~1 s; the cache may add at most the TTL (1 s).
        await eventually(changed, timeout=4)


async def test_kubeadm_cache_line_end_to_end(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = (
            f".:PORT {{\n bind 127.0.0.1\n forward . 127.0.0.1:{up.port} {{\n"
            "  max_concurrent 1000\n }\n cache 30\n}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            for _ in range(3):
                msg = await ask(srv.port, "nope.example.test.", "A")
                assert msg.rcode() == dns.rcode.NXDOMAIN
                msg = await ask(srv.port, "www.example.test.", "A")
                assert msg.answer[0].ttl <= 30
            assert up.counts == {("nope.example.test.", "A"): 1, ("www.example.test.", "A"): 1}
            # Hits re-served from bytes by the dispatcher are still counted as cache hits.
            labels = {"server": f"dns://127.0.0.1:{srv.port}", "zones": ".", "view": ""}
            sample = srv.registry.get_sample_value
            assert sample("coredns_cache_requests_total", labels) == 6
            hits = [
                sample("coredns_cache_hits_total", {**labels, "type": t})
                for t in ("success", "denial")
            ]
            assert hits == [2, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cache 30 {\n success\n}", "usage: success CAPACITY"),
        ("cache 30 {\n success 0\n}", "between 1 and"),
        ("cache 30 {\n prefetch 2 1m 5%\n}", "between 10 and 90"),
        ("cache 30 {\n serve_stale 1h later\n}", "immediate or verify"),
        ("cache 30 {\n servfail 10m\n}", "at most 5m"),
        ("cache 30 {\n disable everything\n}", "usage: disable success|denial"),
        ("cache 30 {\n keepttl 5\n}", "takes no arguments"),
        ("cache 30 {\n sizes 5\n}", "unknown property 'sizes'"),
    ],
)
def test_bad_cache_config_is_refused_with_location(text: str, message: str) -> None:
    with pytest.raises(CorefileError) as err:
        parse_directive(text, "cache")
    assert message in str(err.value) and "Corefile:" in str(err.value)


@pytest.mark.parametrize("mode", ["wrong_id", "wrong_question", "wrong_port", "spoof_first"])
async def test_spoofed_replies_never_enter_the_cache(mode: str) -> None:
    """Forgeries (wrong ID, wrong question, wrong source port) carry 6.6.6.6 for the asked name
    and for evil.example.: neither may be answered now or later from the cache."""
    async with stack(behaviour=Behaviour(mode=mode)) as s:
        first = await s.ask("www.example.test.")
        if mode == "spoof_first":  # the forgeries race the genuine reply, which wins
            assert [rdata_text(r) for r in first.answer] == ["192.0.2.10"]
        else:
            assert first.rcode == SERVFAIL
        # The upstream goes silent: from now on only the cache can answer.
        s.up.behaviour = Behaviour(mode="drop")
        s.clock.now += 10  # past the 5 s a SERVFAIL is cached, within the 30 s of a success
        again = await s.ask("www.example.test.")
        evil = await s.ask("evil.example.")
        for reply in (first, again, evil):
            assert "6.6.6.6" not in [rdata_text(r) for r in (*reply.answer, *reply.additional)]
        assert evil.rcode == SERVFAIL
        if mode == "spoof_first":
            assert [rdata_text(r) for r in again.answer] == ["192.0.2.10"]  # the genuine one
        else:
            assert again.rcode == SERVFAIL


async def _ask_with_memo(cache: CachePlugin, handler: Handler) -> Reply:
    """One query through the cache as the dispatcher runs it: with a memo plugins annotate."""
    token = memo.current.set(memo.Memo())
    try:
        return await cache(request("web.shop.svc.cluster.local."), handler)
    finally:
        memo.current.reset(token)


@dataclass
class FakeIndex:
    """Answers as the kubernetes plugin does: with a validity check on the memo."""

    calls: int = 0
    valid: bool = True
    rcode: int = NOERROR

    async def __call__(self, req: Request) -> Reply:
        self.calls += 1
        note = memo.get()
        assert note is not None
        note.allow(lambda: self.valid)
        if self.rcode != NOERROR:
            return Reply(self.rcode, aa=True, plugin="kubernetes")
        return Reply(NOERROR, (a(req.qname, 30, "10.0.0.1"),), aa=True, plugin="kubernetes")


async def test_index_answers_keep_no_records_and_are_given_again_on_hits() -> None:
    """An entry for an answer the index gives again while its check holds keeps no records:
    a hit asks the index again and shows the answer as a stored one (aged, written by the
    cache); a changed check or a different answer is a miss."""
    index = FakeIndex()
    clock = Clock()
    reg = CollectorRegistry()
    cache = CachePlugin(parse_directive("cache 30", "cache"), context(reg), clock=clock)
    labels = {"server": "dns://:1053", "zones": ".", "view": "", "type": "success"}

    first = await _ask_with_memo(cache, index)
    assert (first.plugin, ttls(first)) == ("kubernetes", [30])
    clock.now += 7
    hit = await _ask_with_memo(cache, index)
    assert (hit.plugin, ttls(hit), index.calls) == ("cache", [23], 2)
    assert [rdata_text(r) for r in hit.answer] == ["10.0.0.1"]
    assert reg.get_sample_value("coredns_cache_hits_total", labels) == 1

    index.rcode = NXDOMAIN  # the index says otherwise under the same check: a miss, stored anew
    changed = await _ask_with_memo(cache, index)
    assert (changed.rcode, changed.plugin, index.calls) == (NXDOMAIN, "kubernetes", 3)
    assert reg.get_sample_value("coredns_cache_hits_total", labels) == 1

    index.rcode = NOERROR
    index.valid = False  # the objects it came from changed: the entry ends before any hit
    again = await _ask_with_memo(cache, index)
    assert (again.plugin, ttls(again), index.calls) == ("kubernetes", [30], 4)


async def test_with_serve_stale_index_answers_keep_their_records() -> None:
    index = FakeIndex()
    clock = Clock()
    cache = CachePlugin(
        parse_directive("cache 30 {\n serve_stale\n}", "cache"), context(), clock=clock
    )
    await _ask_with_memo(cache, index)
    clock.now += 7
    hit = await _ask_with_memo(cache, index)
    assert (hit.plugin, ttls(hit), index.calls) == ("cache", [23], 1)

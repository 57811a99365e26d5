"""`cache [TTL] [ZONES...] { ... }`: a response cache, as CoreDNS's `cache` plugin.

Positive replies live for the smallest TTL in the reply, negative ones (NXDOMAIN, NODATA) per
RFC 2308 (smallest of the SOA's TTL and MINIMUM), both clamped to [MINTTL, TTL]; SERVFAIL lives
`servfail` seconds. Clients see the TTLs count down. The key is the case-folded name, type,
class, DO and CD. Truncated replies are never stored.

Answers written by the cluster index (`kubernetes`, `autopath`) are stored for at most their own
TTL, never raised to MINTTL (`ttl 0` answers are not cached at all), and with the validity check
the plugin gave (see `memo`): a cached cluster answer ends as soon as the index publishes a
change to the objects it came from, so a new Service resolves, and a deleted one stops, at once
rather than a TTL later. Forwarded answers keep their TTLs.

An index answer is a function of the index while its check holds, so its entry keeps when it
was stored, its TTL and its check, not its records: a hit asks the plugins behind the cache
again (an in-memory lookup) and shows the answer aged as a stored one would be. The records of
the names a cluster asks all day are kept once, as bytes in the dispatcher's fast path, instead
of twice; at 10,000 services that is ~0.6 KB a name. (With `prefetch` or `serve_stale` entries
keep their records: those serve an entry without, or before, asking again.)

Each tier is an LRU; once full, it admits a new name only on its second ask (`admission`).

A reply served from an entry is labelled `plugin="cache"` in `coredns_dns_responses_total`, as
CoreDNS labels it, and so are the fast path's re-serves of those bytes; the miss that filled the
entry keeps the label of the plugin that wrote it.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from kdns import metrics
from kdns.dns import names
from kdns.dns.message import Reply, Request
from kdns.dns.records import AXFR, IXFR
from kdns.plugins import memo
from kdns.plugins.base import BuildContext, Handler, Service
from kdns.plugins.cache.config import CacheConfig
from kdns.plugins.cache.stale import Refresher, answers, refresh_stale, usable
from kdns.plugins.cache.store import (
    Entry,
    Key,
    Kind,
    Store,
    all_ttls,
    classify,
    minimal_ttl,
    set_ttl,
)

INDEX_PLUGINS = frozenset({"kubernetes", "autopath"})
# Writers whose answer, while its validity check holds, is the same whoever asks (autopath's
# depends on the client's namespace): their entries keep no records (see the module doc).
REPRODUCIBLE = frozenset({"kubernetes", "k8s_external"})


@dataclass(slots=True)
class _Metrics:
    requests: Any
    misses: Any
    prefetch: Any
    stale: Any
    hits: dict[str, Any] = field(default_factory=dict)
    evictions: dict[str, Any] = field(default_factory=dict)


class CachePlugin(Service):
    name = "cache"

    def __init__(
        self, config: CacheConfig, ctx: BuildContext, clock: Callable[[], float] | None = None
    ) -> None:
        self.config = config
        self._zones = names.Zones(config.zones)
        self.clock = loop_clock = clock or time.monotonic
        reg = ctx.registry
        base = (ctx.server, ",".join(config.zones), "")
        typed = ("server", "type", "zones", "view")
        plain = ("server", "zones", "view")

        def child(name: str, doc: str, kind: str | None = None) -> Any:
            if kind is None:
                return metrics.counter(reg, name, doc, plain).labels(*base)
            return metrics.counter(reg, name, doc, typed).labels(base[0], kind, *base[1:])

        self.m = _Metrics(
            requests=child("coredns_cache_requests_total", "The count of cache requests."),
            misses=child("coredns_cache_misses_total", "The count of cache misses."),
            prefetch=child("coredns_cache_prefetch_total", "Times an item was prefetched."),
            stale=child("coredns_cache_served_stale_total", "Requests served from stale entries."),
        )
        entries = metrics.gauge(
            reg, "coredns_cache_entries", "The number of elements in the cache.", typed
        )
        stale_window = config.serve_stale

        def ttu(_key: Key, entry: Entry, _now: float) -> float:
            return entry.stored + entry.ttl + stale_window

        self.stores: dict[Kind, Store] = {}
        self._fast_hits: dict[Kind, _FastHits] = {}
        # The last reply stored, with its kind, TTL and shown form (see store()).
        self._last_shown: tuple[Reply, Kind, float, Reply] | None = None
        for kind, tier in ((Kind.SUCCESS, config.success), (Kind.DENIAL, config.denial)):
            self.m.hits[kind] = child("coredns_cache_hits_total", "The count of cache hits.", kind)
            # Told the fast path's re-serves of entries of this kind: one shared counter, not
            # a closure kept with every stored reply.
            self._fast_hits[kind] = _FastHits(self.m.requests, self.m.hits[kind])
            self.m.evictions[kind] = child(
                "coredns_cache_evictions_total", "The count of cache evictions.", kind
            )
            store = Store(tier.capacity, ttu, loop_clock, self.m.evictions[kind])
            self.stores[kind] = store
            entries.labels(base[0], kind, *base[1:]).set_function(store.__len__)
        self.refresher = Refresher(loop_clock)
        self._tasks = self.refresher.tasks
        # A positive answer, even stale, before a denial of the same name (needs serve_stale).
        self._prefer_positive = config.prefer_positive and config.serve_stale > 0
        # Prefetching and serving stale answer from an entry without asking first: every
        # entry keeps its records then.
        self._keeps_records = bool(config.prefetch or config.serve_stale)

    def key(self, request: Request) -> Key:
        return (request.name, request.qtype, request.qclass, request.do, request.cd)

    def _get(self, key: Key) -> Entry | None:
        if self._prefer_positive:
            positive = self.stores[Kind.SUCCESS].get(key)
            if positive is not None and positive.reply is not None and positive.reply.answer:
                return positive
        return self.stores[Kind.DENIAL].get(key) or self.stores[Kind.SUCCESS].get(key)

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        cfg = self.config
        if request.qtype in (AXFR, IXFR) or self._zones.match(request.name) is None:
            return await call_next(request)
        self.m.requests.inc()
        now = self.clock()
        key = self.key(request)
        entry = self._get(key)
        if entry is not None and entry.valid is not None and not entry.valid():
            self.stores[entry.kind].pop(key)  # what it was derived from has changed
            entry = None
        if entry is not None:
            age = now - entry.stored
            reply = entry.reply
            if age < entry.ttl:
                if reply is None:
                    return await self._again(key, entry, request, call_next, age)
                self.m.hits[entry.kind].inc()
                if cfg.prefetch:
                    memo.deny()  # every hit counts towards prefetching: take the full path
                    if self._should_prefetch(entry, now, age):
                        self._prefetch(key, entry, request, call_next)
                else:
                    self._memo_hit(entry, age)
                return self._serve(reply, age)
            memo.deny()  # stale: each answer must trigger a refresh
            if reply is not None and cfg.serve_stale and age < entry.ttl + cfg.serve_stale:
                fresh = await self._stale(key, entry, request, call_next)
                if fresh is not None:
                    return fresh
                self.m.stale.inc()
                return self._serve_stale(reply, self.clock() - entry.stored)
        self.m.misses.inc()
        # _fetch written out (one coroutine less on every miss): a name asked once is the
        # commonest miss, and what it costs is the cold path's.
        mark = self._mark()
        return self._filled(key, request, await call_next(request), mark)

    def _filled(
        self, key: Key, request: Request, reply: Reply, mark: tuple[memo.Memo, int] | None
    ) -> Reply:
        """What a miss answers, once the plugins behind gave `reply`: stored if it may be."""
        shown, stored = self._keep(key, request, reply, mark)
        if stored is not None and not self.config.prefetch:
            self._memo_hit(stored, self.clock() - stored.stored)
        return shown

    def _memo_hit(self, entry: Entry, age: float) -> None:
        """Let the dispatcher re-serve these bytes until the shown TTL would tick down."""
        note = memo.get()
        if note is None:
            return
        left = entry.ttl - age
        note.allow(entry.valid)
        note.credit = CachePlugin.name  # re-serves of these bytes are cache hits
        now = time.monotonic()
        note.bound(now + left)
        if not self.config.keepttl:
            note.count_down(now - age, int(age))  # the fast path re-stamps TTLs each second
        note.on_hit.append(self._fast_hits[entry.kind])

    def _serve(self, reply: Reply, age: float) -> Reply:
        """An entry's reply (or its records given again) as shown `age` seconds after storing."""
        if self.config.keepttl:
            return reply
        return reply.aged(int(age))

    async def _again(
        self, key: Key, entry: Entry, request: Request, call_next: Handler, age: float
    ) -> Reply:
        """A hit on an entry that keeps no records: the plugins behind give the answer again
        (the same while the entry's check holds), shown as the entry's. If what they give now
        is another kind of answer, or another writer's, it is a miss and stored as one."""
        mark = self._mark()
        fresh = await call_next(request)
        if fresh.plugin not in REPRODUCIBLE or fresh.tc or classify(fresh) is not entry.kind:
            self.stores[entry.kind].pop(key)
            self.m.misses.inc()
            return self._filled(key, request, fresh, mark)
        if mark is not None:
            # The entry's check covers this answer: the plugins' own (an equal check, made
            # anew after a publish) would make every re-serve run two.
            del mark[0].checks[mark[1] :]
        self.m.hits[entry.kind].inc()
        self._memo_hit(entry, age)
        # As a stored entry is shown: every TTL the entry's, less its age (one copy, not a
        # capped copy, a relabelled copy and an aged copy).
        ttl = max(0, int(entry.ttl) - int(age))
        if self.config.keepttl or all_ttls(fresh, ttl):
            return fresh.with_records(fresh.answer, fresh.authority, fresh.additional, self.name)
        return set_ttl(fresh, ttl, self.name)

    def _should_prefetch(self, entry: Entry, now: float, age: float) -> bool:
        cfg = self.config
        if now - entry.last_hit > cfg.prefetch_window:
            entry.hits = 0
        entry.hits += 1
        entry.last_hit = now
        if entry.refreshing or entry.hits < cfg.prefetch:
            return False
        threshold = math.ceil(cfg.prefetch_percentage / 100 * entry.ttl)
        return entry.ttl - int(age) <= threshold

    def _prefetch(self, key: Key, entry: Entry, request: Request, call_next: Handler) -> None:
        async def run() -> Reply:
            reply = await self._fetch(key, request, call_next, hits=entry.hits)
            self.m.prefetch.inc()
            return reply

        self.refresher.start(entry, run, 0.0, f"cache prefetch {request.qname}")

    async def _stale(
        self, key: Key, entry: Entry, request: Request, call_next: Handler
    ) -> Reply | None:
        """A fresh reply for a request that found only a stale entry, or None: serve it."""

        async def run() -> Reply | None:
            reply = await self._fetch(key, request, call_next, keep=usable)
            return reply if usable(reply) else None  # a failure keeps the stale entry

        def now_fresh() -> Reply | None:
            current = self._get(key)
            if current is None or current.reply is None:
                return None
            age = self.clock() - current.stored
            return None if age >= current.ttl else self._serve(current.reply, age)

        name = f"cache refresh {request.qname}"
        fresh = await refresh_stale(self.config, self.refresher, entry, run, now_fresh, name)
        if fresh is not None and self._prefer_positive and entry.kind is Kind.SUCCESS:
            return fresh if answers(fresh) else None
        return fresh

    def _serve_stale(self, reply: Reply, age: float) -> Reply:
        if self.config.stale_ttl:
            return set_ttl(reply, self.config.stale_ttl)
        return self._serve(reply, age)

    async def _fetch(
        self,
        key: Key,
        request: Request,
        call_next: Handler,
        hits: int = 0,
        keep: Callable[[Reply], bool] | None = None,
    ) -> Reply:
        """Ask the next plugin and store its reply (only if `keep` says so, where given)."""
        mark = self._mark()
        reply = await call_next(request)
        if keep is not None and not keep(reply):
            return reply
        return self._keep(key, request, reply, mark, hits)[0]

    def _mark(self) -> tuple[memo.Memo, int] | None:
        """Where the validity checks of the plugins about to answer will start."""
        note = memo.get()
        return (note, len(note.checks)) if note is not None else None

    def _keep(
        self,
        key: Key,
        request: Request,
        reply: Reply,
        mark: tuple[memo.Memo, int] | None,
        hits: int = 0,
    ) -> tuple[Reply, Entry | None]:
        """Store a fetched reply with the validity checks its plugins gave since `mark`."""
        valid = memo.every(mark[0].checks[mark[1] :]) if mark is not None else None
        return self.store(key, request.name, reply, self.clock(), hits, valid)

    def store(
        self,
        key: Key,
        name: str,
        reply: Reply,
        now: float,
        hits: int = 0,
        valid: Callable[[], bool] | None = None,
    ) -> tuple[Reply, Entry | None]:
        """Remember `reply` if it may be cached. Returns what the client should see, and the
        entry made for it (None when it was not stored)."""
        cfg = self.config
        kind: Kind
        ttl: float
        last = self._last_shown
        if last is not None and last[0] is reply:
            # The same reply object as the last one offered (the index's negative answers are
            # one shared value per zone): its kind, TTL and shown form are known already.
            _, kind, ttl, shown = last
            if self._disabled(kind, name):
                return reply, None
        else:
            found = classify(reply)
            if found is None or reply.tc:
                return reply, None
            if found is Kind.SERVFAIL:
                # A failed refresh must not push out a (stale) good answer (RFC 8767).
                if cfg.servfail <= 0 or key in self.stores[Kind.SUCCESS]:
                    return reply, None
                kind, ttl = Kind.DENIAL, cfg.servfail
            else:
                kind = found
                if self._disabled(kind, name):
                    return reply, None
                tier = cfg.success if kind is Kind.SUCCESS else cfg.denial
                ttl = minimal_ttl(reply, kind)
                if reply.plugin not in INDEX_PLUGINS:
                    ttl = max(ttl, tier.min_ttl)
                ttl = min(ttl, tier.max_ttl)
                if ttl <= 0:
                    return reply, None
            shown = reply if cfg.keepttl or all_ttls(reply, int(ttl)) else set_ttl(reply, int(ttl))
            if found is not Kind.SERVFAIL:  # storing a SERVFAIL also depends on the key
                self._last_shown = (reply, kind, ttl, shown)
        store = self.stores[kind]
        if not store.admits(key):
            return shown, None  # full, and a name asked once: not worth an entry (see Store)
        served: Reply | None = None
        if valid is None or reply.plugin not in REPRODUCIBLE or self._keeps_records:
            # What each hit answers with: the same records, written by the cache.
            served = shown.with_records(shown.answer, shown.authority, shown.additional, self.name)
        entry = Entry(served, now, ttl, kind, hits=hits, last_hit=now, valid=valid)
        if kind is Kind.SUCCESS or not self._prefer_positive:
            other = Kind.DENIAL if kind is Kind.SUCCESS else Kind.SUCCESS
            self.stores[other].pop(key, None)
        store[key] = entry
        return shown, entry

    def _disabled(self, kind: Kind, name: str) -> bool:
        """Whether `disable success|denial` keeps answers of this kind for `name` out."""
        disabled = (
            self.config.disable_success if kind is Kind.SUCCESS else self.config.disable_denial
        )
        return bool(disabled) and names.longest_zone(name, disabled) is not None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Nothing to start; on exit the refreshes still under way are cancelled."""
        try:
            yield
        finally:
            await self.refresher.tasks.close()


class _FastHits:
    """Counts re-serves of cache entries of one kind as cache requests and hits."""

    __slots__ = ("_hits", "_requests")

    def __init__(self, requests: Any, hits: Any) -> None:
        self._requests = requests
        self._hits = hits

    def __call__(self, n: int) -> None:
        self._requests.inc(n)
        self._hits.inc(n)


def build(config: CacheConfig, ctx: BuildContext) -> CachePlugin:
    return CachePlugin(config, ctx)

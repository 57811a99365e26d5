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

Each tier is an LRU; once full, it admits a new name only on its second ask (`admission`).

A reply served from an entry is labelled `plugin="cache"` in `coredns_dns_responses_total`, as
CoreDNS labels it, and so are the fast path's re-serves of those bytes; the miss that filled the
entry keeps the label of the plugin that wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kdns import metrics
from kdns.admission import Doorkeeper
from kdns.corefile import Directive
from kdns.dns import names
from kdns.dns.message import NOERROR, NXDOMAIN, SERVFAIL, Reply, Request
from kdns.dns.records import AXFR, IXFR, OPT, SOA
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

log = logging.getLogger("kdns.cache")

MAX_SUCCESS_TTL = 3600
MAX_DENIAL_TTL = 1800
MIN_TTL = 5
DEFAULT_CAPACITY = 9984
SERVFAIL_TTL = 5.0
INDEX_PLUGINS = frozenset({"kubernetes", "autopath"})
PROPERTIES = ("success", "denial", "prefetch", "serve_stale", "servfail", "disable", "keepttl")

Key = tuple[str, int, int, bool, bool]


@dataclass(frozen=True, slots=True)
class Tier:
    capacity: int
    max_ttl: int
    min_ttl: int = MIN_TTL


@dataclass(frozen=True, slots=True)
class CacheConfig:
    zones: tuple[str, ...]
    success: Tier = Tier(DEFAULT_CAPACITY, MAX_SUCCESS_TTL)
    denial: Tier = Tier(DEFAULT_CAPACITY, MAX_DENIAL_TTL)
    prefetch: int = 0  # hits that make an entry worth refreshing early; 0: off
    prefetch_window: float = 60.0
    prefetch_percentage: int = 10
    serve_stale: float = 0.0  # how long past expiry an entry may still be served; 0: off
    verify_stale: bool = False
    servfail: float = SERVFAIL_TTL
    disable_success: tuple[str, ...] = ()
    disable_denial: tuple[str, ...] = ()
    keepttl: bool = False


def _tier(sub: Directive, current: Tier) -> Tier:
    parsing.arg_count(sub, 1, 3, f"{sub.name} CAPACITY [TTL] [MINTTL]")
    cap = parsing.integer(sub.args[0], 1, 1 << 30, f"{sub.name} capacity")
    ttl = current.max_ttl
    min_ttl = current.min_ttl
    if len(sub.args) > 1:
        ttl = parsing.integer(sub.args[1], 0, 1 << 31, f"{sub.name} TTL")
    if len(sub.args) > 2:
        min_ttl = parsing.integer(sub.args[2], 0, 1 << 31, f"{sub.name} MINTTL")
    return Tier(cap, ttl, min_ttl)


def parse(d: Directive, block: BlockInfo) -> CacheConfig:
    args = list(d.args)
    max_ttl: int | None = None
    if args and args[0].text.lstrip("-").isdigit():
        max_ttl = parsing.integer(args.pop(0), 1, 1 << 31, "cache TTL")
    cfg = CacheConfig(zones=parsing.zones(args, block.zones))
    if max_ttl is not None:
        cfg = replace(
            cfg,
            success=replace(cfg.success, max_ttl=max_ttl, min_ttl=min(MIN_TTL, max_ttl)),
            denial=replace(cfg.denial, max_ttl=max_ttl, min_ttl=min(MIN_TTL, max_ttl)),
        )
    for sub in d.block or ():
        parsing.no_block(sub)
        name, sargs = sub.name, sub.args
        if name == "success":
            cfg = replace(cfg, success=_tier(sub, cfg.success))
        elif name == "denial":
            cfg = replace(cfg, denial=_tier(sub, cfg.denial))
        elif name == "prefetch":
            cfg = _prefetch(sub, cfg)
        elif name == "serve_stale":
            parsing.arg_count(sub, 0, 2, "serve_stale [DURATION] [immediate|verify]")
            stale = 3600.0
            verify = False
            if sargs:
                stale = parsing.duration(sargs[0])
            if len(sargs) > 1:
                mode = sargs[1].text.lower()  # CoreDNS compares the mode case-insensitively
                if mode not in ("immediate", "verify"):
                    raise sargs[1].error(
                        f"serve_stale refresh mode must be immediate or verify, "
                        f"got {sargs[1].text!r}"
                    )
                verify = mode == "verify"
            cfg = replace(cfg, serve_stale=stale, verify_stale=verify)
        elif name == "servfail":
            parsing.arg_count(sub, 1, 1, "servfail DURATION")
            ttl = parsing.duration(sargs[0])
            if ttl > 300:
                raise sargs[0].error("servfail duration must be at most 5m")
            cfg = replace(cfg, servfail=ttl)
        elif name == "disable":
            if not sargs or sargs[0].text not in ("success", "denial"):
                raise sub.error("usage: disable success|denial [ZONES...]")
            zones = parsing.zones(sargs[1:], cfg.zones)
            field_name = f"disable_{sargs[0].text}"
            cfg = replace(cfg, **{field_name: getattr(cfg, field_name) + zones})
        elif name == "keepttl":
            parsing.no_args(sub)
            cfg = replace(cfg, keepttl=True)
        else:
            raise parsing.unknown_property("cache", sub, PROPERTIES)
    return cfg


def _prefetch(sub: Directive, cfg: CacheConfig) -> CacheConfig:
    parsing.arg_count(sub, 1, 3, "prefetch AMOUNT [[DURATION] [PERCENTAGE%]]")
    amount = parsing.integer(sub.args[0], 1, 1 << 31, "prefetch amount")
    window = cfg.prefetch_window
    pct = cfg.prefetch_percentage
    for tok in sub.args[1:]:
        if tok.text.endswith("%"):
            pct = parsing.integer(
                type(tok)(tok.text[:-1], tok.file, tok.line), 10, 90, "prefetch percentage"
            )
        else:
            window = parsing.duration(tok)
    return replace(cfg, prefetch=amount, prefetch_window=window, prefetch_percentage=pct)


@dataclass(slots=True)
class Entry:
    reply: Reply  # TTLs already capped to `ttl` (unless keepttl), labelled plugin="cache"
    filled: Reply  # the same reply as the miss that stored it returned it (its writer's label)
    stored: float
    ttl: float  # seconds it is fresh
    kind: str  # "success" or "denial"
    hits: int = 0
    last_hit: float = 0.0
    refreshing: bool = False
    # While the answer may be served (the kubernetes plugin's "my index still says this"):
    # a cluster answer ends when the objects it came from change, not when its TTL does.
    valid: Callable[[], bool] | None = None


class _Store:
    """Least-recently-used entries, each with its own expiry, all in O(1).

    cachetools' TLRUCache did this job, at ~60 µs per insert once full (its expiry heap and
    linked list, in Python); every query that misses pays an insert, so at 10,000 names it
    doubled the cost of a miss. An insertion-ordered dict moved on each hit is the LRU order;
    an expired entry is dropped when it is next read or reaches the old end.

    Once full, a new key is admitted only if it was offered before (a Doorkeeper): a flood of
    names asked once then neither grows memory nor evicts the names asked all day.
    """

    def __init__(
        self, capacity: int, ttu: Callable[[Key, Entry, float], float], clock: Any, evicted: Any
    ) -> None:
        self.capacity = capacity
        self._ttu = ttu
        self._clock = clock
        self._evicted = evicted
        self._data: OrderedDict[Key, tuple[float, Entry]] = OrderedDict()
        self.doorkeeper = Doorkeeper()

    def get(self, key: Key) -> Entry | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[1]

    def __contains__(self, key: Key) -> bool:
        item = self._data.get(key)
        return item is not None and item[0] > self._clock()

    def __len__(self) -> int:
        return len(self._data)

    def pop(self, key: Key, default: None = None) -> Entry | None:
        item = self._data.pop(key, None)
        return item[1] if item is not None else default

    def admits(self, key: Key) -> bool:
        """Whether a new entry for `key` would be kept: always while there is room or the key
        is stored already; once full, only on its second offer (the doorkeeper remembers the
        first). A caller asks before building an entry, so a refused one costs nothing."""
        data = self._data
        if len(data) < self.capacity or key in data:
            return True
        return self.doorkeeper.seen_before(key)  # asked again by __setitem__: still True

    def __setitem__(self, key: Key, entry: Entry) -> None:
        now = self._clock()
        expires = self._ttu(key, entry, now)
        data = self._data
        if expires <= now:
            data.pop(key, None)
            return
        if key in data:
            data[key] = (expires, entry)
            data.move_to_end(key)
            return
        if len(data) >= self.capacity and not self.doorkeeper.seen_before(key):
            return
        while len(data) >= self.capacity > 0:
            _, (old_expiry, _) = data.popitem(last=False)
            if old_expiry > now:
                self._evicted.inc()  # a live entry pushed out (expired ones just go)
        if self.capacity > 0:
            data[key] = (expires, entry)


def classify(reply: Reply) -> str | None:
    """success, denial, servfail, or None for replies never cached."""
    if reply.rcode == NOERROR:
        return "success" if reply.answer or _delegation(reply) else "denial"
    if reply.rcode == NXDOMAIN:
        return "denial"
    if reply.rcode == SERVFAIL:
        return "servfail"
    return None


def _delegation(reply: Reply) -> bool:
    return any(r.rtype == 2 for r in reply.authority) and not any(
        r.rtype == SOA for r in reply.authority
    )


def minimal_ttl(reply: Reply, kind: str) -> int:
    """Smallest TTL in the reply; for denials the SOA MINIMUM counts too (RFC 2308)."""
    ttls = []
    for rr in (*reply.answer, *reply.authority, *reply.additional):
        if rr.rtype == OPT:
            continue
        ttls.append(rr.ttl)
        if kind == "denial" and rr.rtype == SOA and len(rr.rdata) >= 4:
            ttls.append(struct.unpack("!I", rr.rdata[-4:])[0])
    return min(ttls) if ttls else MIN_TTL


def _all_ttls(reply: Reply, ttl: int) -> bool:
    """Whether every record already has TTL `ttl` (cluster answers: one TTL throughout)."""
    return all(
        r.ttl == ttl
        for section in (reply.answer, reply.authority, reply.additional)
        for r in section
    )


def _set_ttl(reply: Reply, ttl: int) -> Reply:
    return reply.with_records(
        tuple(r.with_ttl(ttl) for r in reply.answer),
        tuple(r.with_ttl(ttl) for r in reply.authority),
        tuple(r.with_ttl(ttl) for r in reply.additional),
    )


@dataclass(slots=True)
class _Metrics:
    requests: Any
    misses: Any
    prefetch: Any
    stale: Any
    hits: dict[str, Any] = field(default_factory=dict)
    evictions: dict[str, Any] = field(default_factory=dict)


class CachePlugin:
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
        stale = config.serve_stale

        def ttu(_key: Key, entry: Entry, _now: float) -> float:
            return entry.stored + entry.ttl + stale

        self.stores: dict[str, _Store] = {}
        for kind, tier in (("success", config.success), ("denial", config.denial)):
            self.m.hits[kind] = child("coredns_cache_hits_total", "The count of cache hits.", kind)
            self.m.evictions[kind] = child(
                "coredns_cache_evictions_total", "The count of cache evictions.", kind
            )
            store = _Store(tier.capacity, ttu, loop_clock, self.m.evictions[kind])
            self.stores[kind] = store
            entries.labels(base[0], kind, *base[1:]).set_function(store.__len__)
        self._tasks: set[asyncio.Task[None]] = set()

    def key(self, request: Request) -> Key:
        return (request.name, request.qtype, request.qclass, request.do, request.cd)

    def _get(self, key: Key) -> Entry | None:
        return self.stores["denial"].get(key) or self.stores["success"].get(key)

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
            if age < entry.ttl:
                hit = self.m.hits[entry.kind]
                hit.inc()
                if cfg.prefetch:
                    memo.deny()  # every hit counts towards prefetching: take the full path
                    if self._should_prefetch(entry, now, age):
                        self._refresh(key, entry, request, call_next, prefetch=True)
                else:
                    self._memo_hit(entry, age, hit)
                return self._serve(entry, age)
            memo.deny()  # stale: each answer must trigger a refresh
            if cfg.serve_stale and age < entry.ttl + cfg.serve_stale:
                if cfg.verify_stale:
                    fresh = await self._fetch(key, request, call_next)
                    if fresh.rcode not in (SERVFAIL,):
                        return fresh
                else:
                    self._refresh(key, entry, request, call_next, prefetch=False)
                self.m.stale.inc()
                return self._serve(entry, age)
        self.m.misses.inc()
        reply = await self._fetch(key, request, call_next)
        stored = self._get(key)
        if stored is not None and stored.filled is reply and not cfg.prefetch:
            self._memo_hit(stored, self.clock() - stored.stored, self.m.hits[stored.kind])
        return reply

    def _memo_hit(self, entry: Entry, age: float, hit: Any) -> None:
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
        requests = self.m.requests

        def counted(hits: int) -> None:
            requests.inc(hits)
            hit.inc(hits)

        note.on_hit.append(counted)

    def _serve(self, entry: Entry, age: float) -> Reply:
        if self.config.keepttl:
            return entry.reply
        return entry.reply.aged(int(age))

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

    def _refresh(
        self, key: Key, entry: Entry, request: Request, call_next: Handler, *, prefetch: bool
    ) -> None:
        if entry.refreshing:
            return
        entry.refreshing = True

        async def run() -> None:
            try:
                await self._fetch(key, request, call_next, hits=entry.hits)
                if prefetch:
                    self.m.prefetch.inc()
            except Exception:
                log.exception("cache: refreshing an entry failed")
            finally:
                entry.refreshing = False

        task = asyncio.create_task(run(), name=f"cache refresh {request.qname}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, key: Key, request: Request, call_next: Handler, hits: int = 0) -> Reply:
        note = memo.get()
        mark = len(note.checks) if note is not None else 0
        reply = await call_next(request)
        # The validity checks the plugins that answered gave for re-serving this reply.
        valid = memo.every(note.checks[mark:]) if note is not None else None
        return self.store(key, request.name, reply, self.clock(), hits, valid)

    def store(
        self,
        key: Key,
        name: str,
        reply: Reply,
        now: float,
        hits: int = 0,
        valid: Callable[[], bool] | None = None,
    ) -> Reply:
        """Remember `reply` if it may be cached; returns what the client should see."""
        cfg = self.config
        kind = classify(reply)
        if kind is None or reply.tc:
            return reply
        if kind == "servfail":
            # A failed refresh must not push out a (stale) good answer (RFC 8767).
            if cfg.servfail <= 0 or key in self.stores["success"]:
                return reply
            ttl: float = cfg.servfail
            kind = "denial"
        else:
            disabled = cfg.disable_success if kind == "success" else cfg.disable_denial
            if disabled and names.longest_zone(name, disabled) is not None:
                return reply
            tier = cfg.success if kind == "success" else cfg.denial
            ttl = minimal_ttl(reply, kind)
            if reply.plugin not in INDEX_PLUGINS:
                ttl = max(ttl, tier.min_ttl)
            ttl = min(ttl, tier.max_ttl)
            if ttl <= 0:
                return reply
        shown = reply if cfg.keepttl or _all_ttls(reply, int(ttl)) else _set_ttl(reply, int(ttl))
        store = self.stores[kind]
        if not store.admits(key):
            return shown  # full, and a name asked once: not worth an entry (see _Store)
        # What each hit answers with: the same records, written by the cache.
        served = shown.with_records(shown.answer, shown.authority, shown.additional, self.name)
        entry = Entry(served, shown, now, ttl, kind, hits=hits, last_hit=now, valid=valid)
        other = "denial" if kind == "success" else "success"
        self.stores[other].pop(key, None)
        store[key] = entry
        return shown

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def build(config: CacheConfig, ctx: BuildContext) -> CachePlugin:
    return CachePlugin(config, ctx)


SPEC = PluginSpec("cache", parse, build)

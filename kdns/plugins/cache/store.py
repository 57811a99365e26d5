"""The cache's entries and their LRU store, and how a reply is classified and timed."""

from __future__ import annotations

import asyncio
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kdns.admission import Doorkeeper
from kdns.dns import response
from kdns.dns.message import SERVFAIL, Reply
from kdns.dns.records import OPT, SOA
from kdns.plugins.cache.config import MIN_TTL

Key = tuple[str, int, int, bool, bool]


@dataclass(slots=True)
class Entry:
    # TTLs already capped to `ttl` (unless keepttl), labelled plugin="cache". None for an
    # answer the plugins behind the cache give again while `valid` holds (see CachePlugin).
    reply: Reply | None
    stored: float
    ttl: float  # seconds it is fresh
    kind: Kind  # SUCCESS or DENIAL
    hits: int = 0
    last_hit: float = 0.0
    refreshing: bool = False
    # While the answer may be served (the kubernetes plugin's "my index still says this"):
    # a cluster answer ends when the objects it came from change, not when its TTL does.
    valid: Callable[[], bool] | None = None
    # The refresh under way, for stale requests that wait for it instead of asking again.
    refresh: asyncio.Task[Reply | None] | None = None
    # After a failed refresh of a stale entry: no new attempt before this (cache clock).
    retry_after: float = 0.0
    expires: float = 0.0  # when the store drops it (its TTL and any serve_stale window)


class Store:
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
        # Each entry carries its own expiry (Entry.expires): no (expiry, entry) pair per key.
        self._data: OrderedDict[Key, Entry] = OrderedDict()
        self.doorkeeper = Doorkeeper()

    def get(self, key: Key) -> Entry | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry

    def __contains__(self, key: Key) -> bool:
        entry = self._data.get(key)
        return entry is not None and entry.expires > self._clock()

    def __len__(self) -> int:
        return len(self._data)

    def pop(self, key: Key, default: None = None) -> Entry | None:
        return self._data.pop(key, default)

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
        entry.expires = expires = self._ttu(key, entry, now)
        data = self._data
        if expires <= now:
            data.pop(key, None)
            return
        if key in data:
            data[key] = entry
            data.move_to_end(key)
            return
        if len(data) >= self.capacity and not self.doorkeeper.seen_before(key):
            return
        while len(data) >= self.capacity > 0:
            _, old = data.popitem(last=False)
            if old.expires > now:
                self._evicted.inc()  # a live entry pushed out (expired ones just go)
        if self.capacity > 0:
            data[key] = entry


class Kind(StrEnum):
    """What the cache files a reply as: its tiers are SUCCESS and DENIAL (the `type` label of
    coredns_cache_*); a SERVFAIL is kept, briefly, in the denial tier."""

    SUCCESS = "success"
    DENIAL = "denial"
    SERVFAIL = "servfail"


def classify(reply: Reply) -> Kind | None:
    """The kind of `reply` (response.classify's, and SERVFAIL), or None if never cached."""
    if reply.rcode == SERVFAIL:
        return Kind.SERVFAIL
    cls = response.classify(reply)
    if cls is response.Class.ERROR:
        return None
    return Kind.SUCCESS if cls is response.Class.SUCCESS else Kind.DENIAL


def minimal_ttl(reply: Reply, kind: Kind) -> int:
    """Smallest TTL in the reply; for denials the SOA MINIMUM counts too (RFC 2308)."""
    ttls = []
    for rr in (*reply.answer, *reply.authority, *reply.additional):
        if rr.rtype == OPT:
            continue
        ttls.append(rr.ttl)
        if kind is Kind.DENIAL and rr.rtype == SOA and len(rr.rdata) >= 4:
            ttls.append(struct.unpack("!I", rr.rdata[-4:])[0])
    return min(ttls) if ttls else MIN_TTL


def all_ttls(reply: Reply, ttl: int) -> bool:
    """Whether every record already has TTL `ttl` (cluster answers: one TTL throughout)."""
    return all(
        r.ttl == ttl
        for section in (reply.answer, reply.authority, reply.additional)
        for r in section
    )


def set_ttl(reply: Reply, ttl: int, plugin: str | None = None) -> Reply:
    """`reply` with every TTL `ttl` (and written by `plugin`, when given)."""
    return reply.with_records(
        tuple(r.with_ttl(ttl) for r in reply.answer),
        tuple(r.with_ttl(ttl) for r in reply.authority),
        tuple(r.with_ttl(ttl) for r in reply.additional),
        plugin,
    )

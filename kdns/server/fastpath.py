"""Replies served again from bytes: the hot path for the names a cluster asks all day.

When a UDP query has been answered through the chain and its Memo allows it, the encoded reply is
kept under the query's bytes after the ID (flags, counts, the question with its exact letter case,
the OPT record). The next identical query is answered by splicing its ID in front of the stored
bytes, with no decoding, no plugins and no encoding: a few dictionary reads. Entries end when a
plugin's validity check fails (a new index generation), at their deadline (a cache entry's end),
or when the table is full. TTLs of cached answers count down: the stored bytes are re-stamped
once a second. Replies whose address records loadbalance shuffles keep the byte span of those
records and are shuffled on every hit.
"""

from __future__ import annotations

import itertools
import random
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kdns.dns.records import AAAA, MX, A
from kdns.dns.wire import Span
from kdns.server.memo import Memo

MAX_ENTRIES = 20_000  # the hot set of a cluster is a few thousand names; this bounds memory
MAX_QUERY = 300  # longer queries (EDNS options, cookies) take the full path
_SHUFFLED = (A, AAAA, MX)
_TTL = struct.Struct("!I")


@dataclass(slots=True)
class Entry:
    tail: bytes  # the reply without its first two bytes (the ID)
    until: float
    check: Callable[[], bool] | None
    on_hit: tuple[Callable[[], None], ...]
    stat: object  # the metrics recorder's handle for this reply's labels
    size: int
    shuffle: tuple[int, int, int] | None  # (start in tail, record size, count)
    ttls: tuple[tuple[int, int], ...]  # (offset in tail, TTL as encoded) when counting down
    born: float  # monotonic time at which `applied` is 0 and the encoded TTLs are exact
    applied: int = 0  # seconds already taken off the encoded TTLs in `tail`
    fresh: bool = True  # not hit yet: the first hit resolves the per-hit callbacks


def _all(checks: Sequence[Callable[[], bool]]) -> Callable[[], bool] | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    fixed = tuple(checks)
    return lambda: all(c() for c in fixed)


class FastPath:
    def __init__(
        self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.entries: dict[bytes, Entry] = {}
        self.max_entries = max_entries
        self.clock = clock
        self.hits = 0
        # Called on an entry's first hit; what they return is called on that and every later
        # hit (the metrics recorder resolves its counters once, not per query).
        self.on_first_hit: list[Callable[[Entry], Callable[[], None] | None]] = []

    def answer(self, data: bytes) -> bytes | None:
        """The reply for `data`, or None when the query must take the full path."""
        key = data[2:]
        entry = self.entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if entry.until <= now or (entry.check is not None and not entry.check()):
            self.entries.pop(key, None)
            return None
        if entry.ttls and int(now - entry.born) != entry.applied:
            _restamp(entry, int(now - entry.born))
        if entry.fresh:
            self._first_hit(entry)
        for cb in entry.on_hit:
            cb()
        self.hits += 1
        if entry.shuffle is None:
            return data[:2] + entry.tail
        start, size, count = entry.shuffle
        tail = entry.tail
        end = start + size * count
        blocks = [tail[i : i + size] for i in range(start, end, size)]
        random.shuffle(blocks)
        return data[:2] + tail[:start] + b"".join(blocks) + tail[end:]

    def store(
        self, query: bytes, reply: bytes, memo: Memo, spans: list[Span], stat: object
    ) -> None:
        if not memo.usable or len(query) > MAX_QUERY or len(reply) < 12:
            return
        now = self.clock()
        if memo.until <= now:
            return
        shuffle = None
        if memo.shuffle:
            run = [s for s in spans if s[4] == 0 and s[2] in _SHUFFLED]
            if len(run) > 1:
                shuffle = _shuffle_span(run)
                if shuffle is None:
                    return  # records loadbalance shuffles, in a shape we cannot splice
        ttls: tuple[tuple[int, int], ...] = ()
        born = now
        if memo.countdown is not None:
            born = memo.countdown[0] + memo.countdown[1]
            ttls = tuple((s[3] - 2, _TTL.unpack_from(reply, s[3])[0]) for s in spans)
        if len(self.entries) >= self.max_entries:
            # Drop the oldest tenth: cheap, and hot names come straight back.
            for key in list(itertools.islice(self.entries, self.max_entries // 10 or 1)):
                del self.entries[key]
        self.entries[query[2:]] = Entry(
            reply[2:],
            memo.until,
            _all(memo.checks),
            tuple(memo.on_hit),
            stat,
            len(reply),
            shuffle,
            ttls,
            born,
        )

    def _first_hit(self, entry: Entry) -> None:
        entry.fresh = False
        extra = [cb for cb in (r(entry) for r in self.on_first_hit) if cb is not None]
        if extra:
            entry.on_hit = (*entry.on_hit, *extra)

    def clear(self) -> None:
        self.entries.clear()


def _restamp(entry: Entry, applied: int) -> None:
    """Take `applied` seconds off every TTL of the stored reply (never below zero)."""
    tail = bytearray(entry.tail)
    for off, ttl in entry.ttls:
        _TTL.pack_into(tail, off, ttl - applied if ttl > applied else 0)
    entry.tail = bytes(tail)
    entry.applied = applied


def _shuffle_span(run: list[Span]) -> tuple[int, int, int] | None:
    """(start in tail, size, count) when the records form one contiguous equal-size run."""
    size = run[0][1] - run[0][0]
    for prev, cur in itertools.pairwise(run):
        if cur[0] != prev[1] or cur[1] - cur[0] != size or cur[2] != run[0][2]:
            return None
    return (run[0][0] - 2, size, len(run))

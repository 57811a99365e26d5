"""Replies served again from bytes: the hot path for the names a cluster asks all day.

When a UDP query has been answered through the chain and its Memo allows it, the encoded reply is
kept under the query's bytes after the ID (flags, counts, the question with its exact letter case,
the OPT record). The next identical query is answered by splicing its ID in front of the stored
bytes, with no decoding, no plugins and no encoding: a few dictionary reads. Entries end when a
plugin's validity check fails (a new index generation), at their deadline (a cache entry's end),
or when the table is full. Only a query asked before is stored (a doorkeeper of recently seen
query hashes): a flood of names asked once, a random-subdomain attack or a search-list walk no
pod repeats, costs no memory and cannot push out the names asked all day. TTLs of cached
answers count down: the stored bytes are re-stamped once a second. Replies whose address
records loadbalance shuffles are kept once per rotation of those records, served in turn
(round-robin). A hit only bumps a counter; plugins and the metrics recorder are told the
counts in batches (`flush`), always before metrics are read. What the recorder counts for an
entry's hits is resolved when the entry is made, so an entry holds no decoded request or reply:
those would stay alive until a first hit and then leave holes across the heap.
"""

from __future__ import annotations

import collections
import itertools
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from kdns import heap
from kdns.admission import Doorkeeper
from kdns.dns.interning import shared
from kdns.dns.records import AAAA, MX, A
from kdns.dns.wire import Span
from kdns.plugins.memo import Memo, every

MAX_ENTRIES = 20_000  # the hot set of a cluster is a few thousand names; this bounds memory
MAX_QUERY = 300  # longer queries (EDNS options, cookies) take the full path
MAX_ROTATIONS = 16
FLUSH_EVERY = 4096  # entries with unreported hits before counts are handed on anyway
# How many of them are handed on at a time then: each costs a few callbacks, and 4096 at once
# held every other query for ~10 ms at 10,000 services (the p99.9 of the latency run).
FLUSH_CHUNK = 256
# Entries dropped at a time when the table is full: hot names come straight back, and a
# small batch keeps the pause short (2,000 entries at once was a ~2 ms pause).
EVICT_CHUNK = 256
_SHUFFLED = (A, AAAA, MX)
_TTL = struct.Struct("!I")


@dataclass(slots=True)
class Entry:
    tails: tuple[bytes, ...]  # the reply without its ID; one per rotation of shuffled records
    until: float
    check: Callable[[], bool] | None
    on_hit: tuple[Callable[[int], None], ...]
    # When counting down: offset in tail, TTL as encoded, for each record in turn (one flat
    # tuple: an SRV answer with its addresses has 20+ records).
    ttls: tuple[int, ...]
    born: float  # monotonic time at which `applied` is 0 and the encoded TTLs are exact
    applied: int = 0  # seconds already taken off the encoded TTLs in `tails`
    turn: int = 0  # the rotation served next
    pending: int = 0  # hits not yet reported to `on_hit` (see FastPath.flush)


class FastPath:
    def __init__(
        self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.entries: dict[bytes, Entry] = {}
        self.max_entries = max_entries
        self.clock = clock
        self.hits = 0
        # Called once per entry made, with what the full path saw and the reply's size; what
        # they return is told that entry's hit counts (the metrics recorder resolves its
        # counters once, not per hit).
        self.on_store: list[Callable[[object, int], Callable[[int], None] | None]] = []
        self._pending: collections.deque[Entry] = collections.deque()
        self.doorkeeper = Doorkeeper()  # a reply is stored for a query seen before only
        self._callbacks: dict[tuple[Callable[[int], None], ...], tuple[Callable[[int], None], ...]]
        self._callbacks = {}
        self._offsets: dict[tuple[int, ...], tuple[int, ...]] = {}

    def answer(self, data: bytes) -> bytes | None:
        """The reply for `data`, or None when the query must take the full path."""
        key = data[2:]
        entry = self.entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if entry.until <= now or (entry.check is not None and not entry.check()):
            del self.entries[key]
            self.doorkeeper.seen_before(key)  # still a name asked before (see asked_before)
            return None
        if entry.ttls and int(now - entry.born) != entry.applied:
            _restamp(entry, int(now - entry.born))
        # Counting is deferred: a hit only bumps `pending`; flush() hands the counts on.
        if not entry.pending:
            if len(self._pending) >= FLUSH_EVERY:
                self._flush_oldest(FLUSH_CHUNK)
            self._pending.append(entry)
        entry.pending += 1
        self.hits += 1
        tails = entry.tails
        if len(tails) == 1:
            return data[:2] + tails[0]
        turn = entry.turn
        entry.turn = turn + 1 if turn + 1 < len(tails) else 0
        return data[:2] + tails[turn]

    def asked_before(self, data: bytes) -> bool:
        """Whether this query (with any ID) was answered before within the doorkeeper's window,
        or had an entry here: the UDP loop works on such queries (the names a cluster asks all
        day, whose entry has just ended) before names asked once, e.g. a flood's."""
        return self.doorkeeper.knows(data[2:])

    def flush(self) -> None:
        """Report the hits counted since the last flush. Metrics collection calls it before
        reading counters, so scraped values are exact; between scrapes the entries pending
        longest are reported FLUSH_CHUNK at a time once FLUSH_EVERY wait."""
        self._flush_oldest(len(self._pending))

    def _flush_oldest(self, count: int) -> None:
        pending = self._pending
        for _ in range(min(count, len(pending))):
            entry = pending.popleft()
            n = entry.pending
            entry.pending = 0
            for cb in entry.on_hit:
                cb(n)

    def store(
        self, query: bytes, reply: bytes, memo: Memo, spans: list[Span], stat: object
    ) -> None:
        if not memo.usable or len(query) > MAX_QUERY or len(reply) < 12:
            return
        now = self.clock()
        if memo.until <= now:
            return
        key = query[2:]
        if key not in self.entries and not self.doorkeeper.seen_before(key):
            return
        tail = reply[2:]
        tails: tuple[bytes, ...] = (tail,)
        if memo.shuffle:
            run = [s for s in spans if s[4] == 0 and s[2] in _SHUFFLED]
            if len(run) > 1:
                rotations = _rotations(reply, run)
                if rotations is None:
                    return  # records loadbalance shuffles, in a shape we cannot splice
                tails = rotations
        ttls: tuple[int, ...] = ()
        born = now
        if memo.countdown is not None:
            born = memo.countdown[0] + memo.countdown[1]
            ttls = shared(
                self._offsets,
                tuple(
                    itertools.chain.from_iterable(
                        (s[3] - 2, _TTL.unpack_from(reply, s[3])[0]) for s in spans
                    )
                ),
            )
        on_hit = tuple(memo.on_hit)
        if self.on_store:
            size = len(reply)
            told = [cb for cb in (r(stat, size) for r in self.on_store) if cb is not None]
            on_hit = (*on_hit, *told)
        if len(self.entries) >= self.max_entries:
            for old in list(
                itertools.islice(self.entries, max(1, min(EVICT_CHUNK, self.max_entries // 10)))
            ):
                del self.entries[old]
        entry = self.entries[key] = Entry(
            tails,
            memo.until,
            every(memo.checks),
            shared(self._callbacks, on_hit),
            ttls,
            born,
        )
        # Nothing an entry refers to (bytes, callbacks, its check) refers back to it: out of
        # the collector's reach, a full collection does not walk the 20,000 of them.
        heap.untrack(entry)

    def clear(self) -> None:
        self.entries.clear()
        self.doorkeeper.clear()


def _restamp(entry: Entry, applied: int) -> None:
    """Take `applied` seconds off every TTL of the stored replies (never below zero).

    Rotations move records but not TTL positions, and rotated records share one TTL (they are
    one RRset; `_rotations` checks it), so the same offsets serve every rotation."""
    out = []
    for tail in entry.tails:
        buf = bytearray(tail)
        ttls = entry.ttls
        for i in range(0, len(ttls), 2):
            off, ttl = ttls[i], ttls[i + 1]
            _TTL.pack_into(buf, off, ttl - applied if ttl > applied else 0)
        out.append(bytes(buf))
    entry.tails = tuple(out)
    entry.applied = applied


def _rotations(reply: bytes, run: list[Span]) -> tuple[bytes, ...] | None:
    """The reply (without its ID) once per rotation of a contiguous run of equal-size records
    of one type and TTL, for round-robin order: each hit serves the next rotation."""
    size = run[0][1] - run[0][0]
    ttl = reply[run[0][3] : run[0][3] + 4]
    for prev, cur in itertools.pairwise(run):
        if cur[0] != prev[1] or cur[1] - cur[0] != size or cur[2] != run[0][2]:
            return None
        if reply[cur[3] : cur[3] + 4] != ttl:
            return None
    start, end = run[0][0], run[-1][1]
    blocks = [reply[i : i + size] for i in range(start, end, size)]
    if len(blocks) > MAX_ROTATIONS:
        # Large sets: a fixed sample of random orders instead of every rotation.
        rng = random.Random(hash(reply))
        orders = []
        for _ in range(MAX_ROTATIONS):
            shuffled = blocks[:]
            rng.shuffle(shuffled)
            orders.append(shuffled)
    else:
        orders = [blocks[k:] + blocks[:k] for k in range(len(blocks))]
    head, rest = reply[2:start], reply[end:]
    return tuple(head + b"".join(order) + rest for order in orders)

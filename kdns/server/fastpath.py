"""Replies served again from bytes: the hot path for the names a cluster asks all day.

When a UDP query has been answered through the chain and its Memo allows it, the encoded reply is
kept under the query's bytes after the ID (flags, counts, the question with its exact letter case,
the OPT record). The next identical query is answered by splicing its ID in front of the stored
bytes, with no decoding, no plugins and no encoding: a few dictionary reads. Entries end when a
plugin's validity check fails (a new index snapshot), at their deadline (cache TTLs, so clients
still see TTLs counting down), or when the table is full. Replies whose address records
loadbalance shuffles keep the byte span of those records and are shuffled on every hit.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from kdns.dns.records import AAAA, MX, A
from kdns.server.memo import Memo

MAX_ENTRIES = 50_000
MAX_QUERY = 300  # longer queries (EDNS options, cookies) take the full path
_SHUFFLED = (A, AAAA, MX)


@dataclass(slots=True)
class Entry:
    tail: bytes  # the reply without its first two bytes (the ID)
    until: float
    checks: tuple[Callable[[], bool], ...]
    on_hit: tuple[Callable[[], None], ...]
    stat: object  # the metrics recorder's handle for this reply's labels
    size: int
    shuffle: tuple[int, int, int] | None  # (start, record size, count) in the full reply


class FastPath:
    def __init__(
        self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.entries: dict[bytes, Entry] = {}
        self.max_entries = max_entries
        self.clock = clock
        self.hits = 0

    def lookup(self, data: bytes) -> tuple[bytes, Entry] | None:
        """The reply for `data`, or None when the query must take the full path."""
        entry = self.entries.get(data[2:])
        if entry is None:
            return None
        if entry.until < self.clock() or not all(check() for check in entry.checks):
            self.entries.pop(data[2:], None)
            return None
        for cb in entry.on_hit:
            cb()
        self.hits += 1
        if entry.shuffle is None:
            return data[:2] + entry.tail, entry
        start, size, count = entry.shuffle
        tail = entry.tail
        blocks = [tail[i : i + size] for i in range(start - 2, start - 2 + size * count, size)]
        random.shuffle(blocks)
        end = start - 2 + size * count
        return data[:2] + tail[: start - 2] + b"".join(blocks) + tail[end:], entry

    def store(
        self,
        query: bytes,
        reply: bytes,
        memo: Memo,
        spans: list[tuple[int, int, int]],
        stat: object,
    ) -> None:
        if not memo.usable or len(query) > MAX_QUERY or len(reply) < 12:
            return
        shuffle = None
        if memo.shuffle:
            run = [s for s in spans if s[2] in _SHUFFLED]
            if len(run) > 1:
                shuffle = _shuffle_span(run)
                if shuffle is None:
                    return  # records loadbalance shuffles, in a shape we cannot splice
        if len(self.entries) >= self.max_entries:
            # Drop the oldest tenth: cheap, and hot names come straight back.
            for key in list(self.entries)[: self.max_entries // 10 or 1]:
                del self.entries[key]
        self.entries[query[2:]] = Entry(
            reply[2:],
            memo.until,
            tuple(memo.checks),
            tuple(memo.on_hit),
            stat,
            len(reply),
            shuffle,
        )

    def clear(self) -> None:
        self.entries.clear()


def _shuffle_span(run: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """(start, size, count) when the records form one contiguous run of equal-size records."""
    size = run[0][1] - run[0][0]
    for prev, cur in itertools.pairwise(run):
        if cur[0] != prev[1] or cur[1] - cur[0] != size or cur[2] != run[0][2]:
            return None
    return (run[0][0], size, len(run))

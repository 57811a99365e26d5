"""Which keys earn a place in a bounded table: those asked for before (a doorkeeper).

A cluster's traffic is a hot set of names asked all day and a long tail asked once: search-list
expansions no pod repeats, and under attack a flood of random subdomains. A table that stores
every key spends its memory on the tail and, once full, evicts the hot set to make room for
names nobody asks again. The doorkeeper (TinyLFU's first stage) remembers the keys seen once,
in two generations of at most `per_generation` keys each: a key is admitted on its second
sighting within that window.

A generation is an open-addressing table of the keys' 64-bit hashes in one flat array (8 bytes
a slot, half full at most), not a set of int objects: 2 x 1 MiB instead of 2 x ~4 MiB, which
a flood of names asked once would otherwise keep resident. A hash collision only admits a key
early, which is harmless.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable

PER_GENERATION = 1 << 16


class Doorkeeper:
    __slots__ = ("_count", "_current", "_mask", "_previous", "per_generation")

    def __init__(self, per_generation: int = PER_GENERATION) -> None:
        self.per_generation = per_generation
        size = 1 << max(4, (2 * per_generation - 1).bit_length())  # at most half full
        self._mask = size - 1
        self._current = array("q", bytes(8 * size))
        self._previous = array("q", bytes(8 * size))
        self._count = 0

    def _find(self, table: array[int], h: int) -> int:
        """The slot holding `h`, or the empty slot where it would go."""
        mask = self._mask
        slot = h & mask
        while True:
            v = table[slot]
            if v == h or v == 0:
                return slot
            slot = (slot + 1) & mask

    def seen_before(self, key: Hashable) -> bool:
        """True when `key` was offered before (within the window); else remember it."""
        h = hash(key) or 1  # 0 marks an empty slot
        mask = self._mask
        current = self._current
        # The first probe inline: at most half full, most lookups end there (a call saved).
        slot = h & mask
        v = current[slot]
        if v == h:
            return True
        if v != 0:
            slot = self._find(current, h)
            if current[slot] == h:
                return True
        previous = self._previous
        v = previous[h & mask]
        if v == h or (v != 0 and previous[self._find(previous, h)] == h):
            return True
        current[slot] = h
        self._count += 1
        if self._count >= self.per_generation:
            self._previous = current
            self._current = array("q", bytes(8 * len(current)))
            self._count = 0
        return False

    def knows(self, key: Hashable) -> bool:
        """Whether `key` was offered within the window (without remembering it)."""
        h = hash(key) or 1
        mask = self._mask
        for table in (self._current, self._previous):
            v = table[h & mask]
            if v == h or (v != 0 and table[self._find(table, h)] == h):
                return True
        return False

    def __len__(self) -> int:
        """Keys remembered in the current generation (the previous one holds at most
        `per_generation` more)."""
        return self._count

    def clear(self) -> None:
        self._current = array("q", bytes(8 * len(self._current)))
        self._previous = array("q", bytes(8 * len(self._previous)))
        self._count = 0

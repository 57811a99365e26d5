"""Which keys earn a place in a bounded table: those asked for before (a doorkeeper).

A cluster's traffic is a hot set of names asked all day and a long tail asked once: search-list
expansions no pod repeats, and under attack a flood of random subdomains. A table that stores
every key spends its memory on the tail and, once full, evicts the hot set to make room for
names nobody asks again. The doorkeeper (TinyLFU's first stage) remembers the keys seen once,
in two generations of at most `per_generation` keys each: a key is admitted on its second
sighting within that window.

A generation is an open-addressing table in one flat array, half full at most, not a set of
int objects: 2 x 0.5 MiB instead of 2 x ~4 MiB, which a flood of names asked once would
otherwise keep resident. The low bits of a key's 64-bit hash pick its slot and the slot keeps
the upper 32 bits, so two keys are confused only if they agree in both (about one in 2^40
pairs); that would only admit a key early, which is harmless.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable

PER_GENERATION = 1 << 16
_TAG = 0xFFFF_FFFF  # a slot keeps 32 bits of the hash: its upper half (the lower picks the slot)


class Doorkeeper:
    __slots__ = ("_count", "_current", "_mask", "_previous", "per_generation")

    def __init__(self, per_generation: int = PER_GENERATION) -> None:
        self.per_generation = per_generation
        size = 1 << max(4, (2 * per_generation - 1).bit_length())  # at most half full
        self._mask = size - 1
        self._current = _table(size)
        self._previous = _table(size)
        self._count = 0

    def _find(self, table: array[int], slot: int, tag: int) -> int:
        """The slot from `slot` on holding `tag`, or the empty slot where it would go."""
        mask = self._mask
        while True:
            v = table[slot]
            if v == tag or v == 0:
                return slot
            slot = (slot + 1) & mask

    def seen_before(self, key: Hashable) -> bool:
        """True when `key` was offered before (within the window); else remember it."""
        h = hash(key)
        home = slot = h & self._mask
        tag = (h >> 32 & _TAG) or 1  # 0 marks an empty slot
        current = self._current
        # The first probe inline: at most half full, most lookups end there (a call saved).
        v = current[slot]
        if v == tag:
            return True
        if v != 0:
            slot = self._find(current, slot, tag)
            if current[slot] == tag:
                return True
        previous = self._previous
        v = previous[home]
        if v == tag or (v != 0 and previous[self._find(previous, home, tag)] == tag):
            return True
        current[slot] = tag
        self._count += 1
        if self._count >= self.per_generation:
            self._previous = current
            self._current = _table(len(current))
            self._count = 0
        return False

    def knows(self, key: Hashable) -> bool:
        """Whether `key` was offered within the window (without remembering it)."""
        h = hash(key)
        home = h & self._mask
        tag = (h >> 32 & _TAG) or 1
        for table in (self._current, self._previous):
            v = table[home]
            if v == tag or (v != 0 and table[self._find(table, home, tag)] == tag):
                return True
        return False

    def __len__(self) -> int:
        """Keys remembered in the current generation (the previous one holds at most
        `per_generation` more)."""
        return self._count

    def clear(self) -> None:
        self._current = _table(len(self._current))
        self._previous = _table(len(self._previous))
        self._count = 0


def _table(size: int) -> array[int]:
    return array("I", bytes(4 * size))  # unsigned int: 32 bits on every platform we run on

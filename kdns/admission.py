"""Which keys earn a place in a bounded table: those asked for before (a doorkeeper).

A cluster's traffic is a hot set of names asked all day and a long tail asked once: search-list
expansions no pod repeats, and under attack a flood of random subdomains. A table that stores
every key spends its memory on the tail and, once full, evicts the hot set to make room for
names nobody asks again. The doorkeeper (TinyLFU's first stage) remembers the hashes of keys
seen once, in two generations of at most `per_generation` each: a key is admitted on its second
sighting within that window. A hash collision only admits a key early, which is harmless.
"""

from __future__ import annotations

from collections.abc import Hashable

PER_GENERATION = 1 << 16  # a generation of 65,536 ints is ~4 MiB at most


class Doorkeeper:
    def __init__(self, per_generation: int = PER_GENERATION) -> None:
        self.per_generation = per_generation
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def seen_before(self, key: Hashable) -> bool:
        """True when `key` was offered before (within the window); else remember it."""
        h = hash(key)
        if h in self._current or h in self._previous:
            return True
        current = self._current
        current.add(h)
        if len(current) >= self.per_generation:
            self._previous, self._current = current, set()
        return False

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def clear(self) -> None:
        self._current.clear()
        self._previous.clear()

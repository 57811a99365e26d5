"""One copy of equal small values that many stored entries hold.

The replies kept for the names a cluster asks all day hold many equal values: the same hit
callbacks, the same TTL offsets (names of one length in one zone), the same namespace keys in
their validity checks. Kept once instead of once per entry, a stored name costs ~0.2 KB less.
"""

from __future__ import annotations

from typing import TypeVar

# Bound on each table: past it the table starts again (values already shared stay shared).
MAX_SHARED = 4096

T = TypeVar("T")


def shared(table: dict[T, T], value: T) -> T:
    """`value`, or an equal one kept in `table` before (`value` is kept if none was)."""
    found = table.get(value)
    if found is None:
        if len(table) >= MAX_SHARED:
            table.clear()
        table[value] = found = value
    return found

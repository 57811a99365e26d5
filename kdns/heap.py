"""Keeping Python's cyclic garbage collector out of the query path.

A full collection walks every object the collector tracks. With the libraries, a large index
and a cache full of replies that is tens of milliseconds during which nothing is answered, and
with steady query traffic it comes back every second or two: at 10,000 services it put 38 ms
into the p99 latency. Objects alive for a while mostly stay alive (the index, cache entries);
freezing them moves them out of the collector's reach, and plain reference counting still
frees them when they go. Cyclic garbage frozen by mistake is recovered by the full
`collect_all()` that runs when a configuration goes live and every FULL_INTERVAL seconds; what
can never be in a cycle (the index's records, the fast path's entries) is untracked instead
(`untrack_records`, `untrack`), so that full collection walks only what might be. Bulk
loads of acyclic data (a list of 100k endpoints, a snapshot file) run with the collector
`paused()`: with it running each of their millions of allocations re-triggers collections that
scan them all (2-3 times the time).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
from collections.abc import Iterator
from typing import Any

from kdns.cluster.objects import Slice

# Young objects are collected and frozen this often. A collection's pause grows with what
# survived since the last one: at 10,000 services a second's worth (tens of thousands of cache
# and fast-path objects) paused every query for up to ~20 ms; a tenth of that is ~1 ms.
YOUNG_INTERVAL = 0.1
FULL_INTERVAL = 600.0


def collect_all() -> None:
    """Collect everything, frozen objects included, then freeze the survivors."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def freeze_young() -> None:
    """Collect the young generations (cheap), then freeze what survived."""
    gc.collect(1)
    gc.freeze()


async def tend() -> None:
    """Run for the life of the server: freeze survivors often, collect everything now and then."""
    since_full = 0.0
    while True:
        await asyncio.sleep(YOUNG_INTERVAL)
        since_full += YOUNG_INTERVAL
        if since_full >= FULL_INTERVAL:
            since_full = 0.0
            collect_all()
        else:
            freeze_young()


class _Pause:
    """How many loads hold the collector off, and whether it ran before the first of them."""

    holders = 0
    was_enabled = False


@contextlib.contextmanager
def paused(freeze: bool = True) -> Iterator[None]:
    """The cyclic collector off while the block runs (nested holds count), then back on as it
    was; with `freeze`, what survived the load is frozen afterwards."""
    if _Pause.holders == 0:
        _Pause.was_enabled = gc.isenabled()
        gc.disable()
    _Pause.holders += 1
    try:
        yield
    finally:
        _Pause.holders -= 1
        if _Pause.holders == 0 and _Pause.was_enabled:
            gc.enable()
            if freeze:
                freeze_young()


# PyObject_GC_UnTrack, CPython's own call for objects that cannot be part of a cycle (None on
# an interpreter without it: untrack() then does nothing, which is only slower).
try:
    _UNTRACK: Any = ctypes.pythonapi.PyObject_GC_UnTrack
    _UNTRACK.argtypes = [ctypes.py_object]
    _UNTRACK.restype = None
except AttributeError:
    _UNTRACK = None


def untrack_records(obj: object) -> None:
    """Take a cluster object (and a slice's endpoint records) out of the collector's reach.

    They are immutable records of strings, numbers and tuples of such records: nothing in them
    can refer back, so they can never be part of a cycle and reference counting frees them. At
    10,000 services and 100,000 endpoints they were half the objects the collector tracked,
    and every full collection (`collect_all`) walked them all. Untracking only takes objects
    out of cycle detection; it can never free one that is still referred to.
    """
    if _UNTRACK is None:
        return
    _UNTRACK(obj)
    if isinstance(obj, Slice):
        for endpoint in obj.endpoints:
            _UNTRACK(endpoint)
        # The collector itself untracks only tuples of untracked tuples and atoms, never a
        # tuple of records.
        _UNTRACK(obj.endpoints)


def untrack(obj: object) -> None:
    """Take `obj` out of the collector's reach: the caller knows nothing refers back to it
    from what it refers to (it cannot be part of a cycle). Reference counting still frees it."""
    if _UNTRACK is not None:
        _UNTRACK(obj)


def give_back() -> None:
    """Hand a bulk load's garbage back to the OS (a parsed snapshot's node graph): collect it,
    then trim glibc's heap, which otherwise keeps those pages and the process at its peak."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)

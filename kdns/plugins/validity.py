"""How long an answer from the cluster index may be served again: the kubernetes plugin's
validity checks, which the fast path and the cache keep with every reply they store.

An answer depends on a few index keys (its service, its namespace: `clustername.dependencies`).
A check compares their version numbers with those the answer was made from, and never holds
the snapshot itself (a stored reply must not pin an old index). Answers from one snapshot that
depend on the same keys share one check, and the keys are built from strings kept once: with
~20,000 stored replies at 10,000 services the checks were a fifth of what the replies cost.
"""

from __future__ import annotations

from typing import Protocol

from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Key
from kdns.dns.interning import shared

# Checks shared within one index generation. A small table: what shares a check is asked
# together (a pod's A and AAAA), and a flood of names asked once, each under a service name of
# its own, would otherwise keep thousands of checks alive.
MAX_SHARED_CHECKS = 1024


class HasIndex(Protocol):
    index: ClusterIndex  # the current snapshot; replaced on every publish


class StillValid:
    """Whether an answer given from one index snapshot still holds. While no publish happened
    the answer is valid outright; after one, it still is if none of the keys it depends on
    changed (without keys: never). A slotted object rather than a closure: one is kept with
    every stored reply, and this is a third of a closure's memory."""

    __slots__ = ("_before", "_deps", "_owner", "_seen")

    def __init__(
        self,
        owner: HasIndex,
        generation: int,
        deps: tuple[Key, ...] | None,
        before: tuple[int, ...],
    ) -> None:
        self._owner = owner
        self._seen = generation
        self._deps = deps
        self._before = before

    def __call__(self) -> bool:
        current = self._owner.index
        if current.generation == self._seen:
            return True
        if self._deps is None:
            return False
        versions = current.versions
        for key, version in zip(self._deps, self._before, strict=True):
            if versions.get(key, 0) != version:
                return False
        self._seen = current.generation  # unchanged by this publish: skip the lookup next time
        return True


class Checks:
    """The checks one plugin hands out, one per set of keys within an index generation."""

    def __init__(self, owner: HasIndex) -> None:
        self._owner = owner
        self._by_deps: dict[tuple[Key, ...] | None, StillValid] = {}
        self._generation = -1  # the generation the checks in _by_deps were made for
        self._keys: dict[Key, Key] = {}  # namespace keys, kept once (see _canonical)

    def check(self, index: ClusterIndex, deps: tuple[Key, ...] | None) -> StillValid:
        """The check of an answer `index` gave that depends on `deps` (None: on everything)."""
        if not index.synced:
            deps = None
        by_deps = self._by_deps
        if self._generation != index.generation:
            by_deps.clear()  # a check made from an older snapshot is never handed out again
            self._generation = index.generation
        found = by_deps.get(deps)
        if found is None:
            if len(by_deps) >= MAX_SHARED_CHECKS:
                by_deps.clear()
            before = () if deps is None else tuple([index.versions.get(k, 0) for k in deps])
            kept = None if deps is None else tuple([self._canonical(k) for k in deps])
            found = by_deps[deps] = StillValid(self._owner, index.generation, kept, before)
        return found

    def _canonical(self, key: Key) -> Key:
        """`key` made of strings kept once: every check of a namespace names it, and a name
        parsed from a query is a new string each time."""
        namespace, name = key
        if not namespace:  # ("", ns): the namespace's own key
            return shared(self._keys, key)
        return (shared(self._keys, ("", namespace))[1], name)

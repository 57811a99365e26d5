"""How long an answer from the cluster index may be served again: the kubernetes plugin's
validity checks, which the fast path and the cache keep with every reply they store.

An answer depends on a few index keys (its service, its namespace: `clustername.dependencies`).
A check compares their version numbers with those the answer was made from, and never holds
the snapshot itself (a stored reply must not pin an old index). One is kept with every stored
reply, so it is small: a slotted object, and keys whose namespace string is interned where the
name is parsed (`clustername.dependencies`).
"""

from __future__ import annotations

from typing import Protocol

from kdns.cluster.index import ClusterIndex
from kdns.cluster.objects import Key


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
    """The checks one plugin hands out; the one without keys is one per index generation."""

    def __init__(self, owner: HasIndex) -> None:
        self._owner = owner
        self._everything: StillValid | None = None  # the check without keys, of its generation

    def check(self, index: ClusterIndex, deps: tuple[Key, ...] | None) -> StillValid:
        """The check of an answer `index` gave that depends on `deps` (None: on everything)."""
        if deps is None or not index.synced:
            # A keyless check never moves its generation on (it fails after any publish).
            found = self._everything
            if found is None or found._seen != index.generation:
                found = self._everything = StillValid(self._owner, index.generation, None, ())
            return found
        versions = index.versions
        return StillValid(
            self._owner, index.generation, deps, tuple([versions.get(k, 0) for k in deps])
        )

"""Copy-on-write maps: a mutable map whose snapshots cost what changed, not what it holds.

A `CowMap` keeps its entries in 2^k shards (plain dicts) chosen by the key's hash. `freeze()`
returns a `FrozenMap` sharing every shard with the `CowMap`; the next write to a shard copies that
shard first, so a published snapshot never changes, and publishing after a few changes costs
the copies of the few shards they touched (tens of entries each) plus a tuple of shard
references. Old snapshots hold only their own shards: nothing links one snapshot to another, so
they are freed as soon as their last reader drops them.

The shard count follows the size (between `_MIN` and `_MAX` entries per shard on average); a
resize rebuilds every shard once, which is amortised over the inserts or deletes that caused it.
Lookups are one `hash()`, one tuple index and one dict read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

_TARGET = 32  # average entries per shard after a resize
_MAX = 4 * _TARGET  # grow past this average...
_MIN = _TARGET // 8  # ...shrink below this one
_EMPTY: dict[object, object] = {}  # shared by every empty shard of every map; never written
_MISSING = object()


def _shard_count(size: int) -> int:
    n = 1
    while n * _TARGET < size:
        n *= 2
    return n


class _ShardReads(Generic[K, V]):
    """Reads shared by both sides: one hash, one tuple or list index, one dict read."""

    __slots__ = ()
    _shards: tuple[dict[K, V], ...] | list[dict[K, V]]
    _mask: int
    _len: int

    def __getitem__(self, key: K) -> V:
        return self._shards[hash(key) & self._mask][key]

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | D, /) -> V | D: ...
    def get(self, key: K, default: object = None, /) -> object:
        return self._shards[hash(key) & self._mask].get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._shards[hash(key) & self._mask]

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[K]:
        for shard in self._shards:
            yield from shard


class FrozenMap(_ShardReads[K, V], Mapping[K, V]):
    """An immutable snapshot of a `CowMap`."""

    __slots__ = ("__weakref__", "_len", "_mask", "_shards")

    def __init__(self, shards: tuple[dict[K, V], ...], size: int) -> None:
        self._shards = shards
        self._mask = len(shards) - 1
        self._len = size

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self.items())!r})"


class CowMap(_ShardReads[K, V]):
    """The mutable side: dict-like writes, `freeze()` for an O(changes) immutable snapshot."""

    __slots__ = ("_len", "_mask", "_owned", "_shards")

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        self._len = 0
        self._shards: list[dict[K, V]] = []
        self._mask = 0
        self._owned: set[int] = set()  # shards written since the last freeze: private to us
        self._rebuild(dict(items) if items else {})

    # -- writes ----------------------------------------------------------------------------
    def _own(self, i: int) -> dict[K, V]:
        if i in self._owned:
            return self._shards[i]
        shard = dict(self._shards[i])  # a published snapshot may share the old one
        self._shards[i] = shard
        self._owned.add(i)
        return shard

    def __setitem__(self, key: K, value: V) -> None:
        i = hash(key) & self._mask
        shard = self._shards[i] if i in self._owned else self._own(i)
        if key not in shard:
            self._len += 1
            if self._len > _MAX * len(self._shards):
                shard[key] = value
                self._rebuild(self._items())
                return
        shard[key] = value

    def __delitem__(self, key: K) -> None:
        self.pop(key)

    @overload
    def pop(self, key: K, /) -> V: ...
    @overload
    def pop(self, key: K, default: V | D, /) -> V | D: ...
    def pop(self, key: K, default: object = _MISSING, /) -> object:
        i = hash(key) & self._mask
        if key not in self._shards[i]:
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = self._own(i).pop(key)
        self._len -= 1
        if len(self._shards) > 1 and self._len < _MIN * len(self._shards):
            self._rebuild(self._items())
        return value

    def freeze(self) -> FrozenMap[K, V]:
        """A snapshot that later writes leave untouched (they copy a shard before writing it)."""
        self._owned.clear()
        return FrozenMap(tuple(self._shards), self._len)

    def _items(self) -> dict[K, V]:
        out: dict[K, V] = {}
        for shard in self._shards:
            out.update(shard)
        return out

    def _rebuild(self, items: dict[K, V]) -> None:
        n = _shard_count(len(items))
        shards: list[dict[K, V]] = [{} for _ in range(n)]
        mask = n - 1
        for key, value in items.items():
            shards[hash(key) & mask][key] = value
        # Empty shards share one dict, so a sparse map costs n references, not n dicts.
        empty: dict[K, V] = _EMPTY  # type: ignore[assignment]
        self._shards = [s if s else empty for s in shards]
        self._mask = mask
        self._len = len(items)
        self._owned = {i for i, s in enumerate(self._shards) if s}

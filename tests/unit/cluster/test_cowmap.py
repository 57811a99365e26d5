"""CowMap / FrozenMap: snapshots equal a plain-dict model and never change after freeze()."""

from __future__ import annotations

import gc
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdns.cluster.cowmap import CowMap, FrozenMap

# Keys collide on purpose (small ints, their string forms and tuples) so shards hold several.
keys = st.one_of(
    st.integers(-50, 50),
    st.integers(0, 50).map(str),
    st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 20).map(str)),
)
ops = st.one_of(
    st.tuples(st.just("set"), keys, st.integers()),
    st.tuples(st.just("del"), keys, st.none()),
    st.tuples(st.just("freeze"), st.none(), st.none()),
    # Ranges of hundreds of keys push the map through shard-count growth and shrinking.
    st.tuples(st.just("bulk_set"), st.integers(0, 5), st.integers(1, 700)),
    st.tuples(st.just("bulk_del"), st.integers(0, 5), st.integers(1, 700)),
)


def assert_same(snapshot: FrozenMap[object, int] | CowMap[object, int], model: dict[object, int]):
    assert len(snapshot) == len(model)
    assert sorted(map(repr, snapshot)) == sorted(map(repr, model))
    for key, value in model.items():
        assert key in snapshot
        assert snapshot[key] == value
        assert snapshot.get(key) == value
    assert "absent" not in snapshot
    assert snapshot.get("absent") is None
    assert snapshot.get("absent", -1) == -1


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=60))
def test_snapshots_match_a_dict_model_and_never_change(steps: list[tuple[str, object, object]]):
    cow: CowMap[object, int] = CowMap()
    model: dict[object, int] = {}
    frozen: list[tuple[FrozenMap[object, int], dict[object, int]]] = []
    for op, a, b in steps:
        if op == "set":
            assert isinstance(b, int)
            cow[a] = b
            model[a] = b
        elif op == "del":
            assert cow.pop(a, None) == model.pop(a, None)
        elif op == "bulk_set":
            assert isinstance(a, int) and isinstance(b, int)
            for i in range(b):
                cow[("bulk", a, i)] = i
                model[("bulk", a, i)] = i
        elif op == "bulk_del":
            assert isinstance(a, int) and isinstance(b, int)
            for i in range(b):
                if ("bulk", a, i) in model:
                    del cow[("bulk", a, i)]
                    del model[("bulk", a, i)]
        else:
            frozen.append((cow.freeze(), dict(model)))
        assert_same(cow, model)
    frozen.append((cow.freeze(), dict(model)))
    for snapshot, seen in frozen:
        assert_same(snapshot, seen)
        assert dict(snapshot) == seen


def test_missing_keys_raise_key_error() -> None:
    cow: CowMap[str, int] = CowMap({"a": 1})
    with pytest.raises(KeyError):
        del cow["b"]
    with pytest.raises(KeyError):
        cow.pop("b")
    with pytest.raises(KeyError):
        cow.freeze()["b"]
    assert cow.pop("a") == 1
    assert len(cow) == 0


def test_a_frozen_map_is_a_mapping() -> None:
    cow = CowMap({"a": 1, "b": 2})
    snap = cow.freeze()
    assert snap == {"a": 1, "b": 2}
    assert dict(snap.items()) == {"a": 1, "b": 2}
    assert set(snap.keys()) == {"a", "b"}


def test_publishing_after_a_change_copies_only_the_touched_shard() -> None:
    cow: CowMap[int, int] = CowMap({i: i for i in range(10_000)})
    first = cow.freeze()
    cow[5] = -5
    second = cow.freeze()
    shared = sum(a is b for a, b in zip(first._shards, second._shards, strict=True))
    assert shared == len(first._shards) - 1
    assert first[5] == 5 and second[5] == -5


def test_snapshots_do_not_reference_each_other() -> None:
    cow: CowMap[int, list[int]] = CowMap({i: [i] for i in range(1000)})
    old = cow.freeze()
    ref = weakref.ref(old)
    cow[1] = [100]
    cow.freeze()
    del old
    gc.collect()
    assert ref() is None

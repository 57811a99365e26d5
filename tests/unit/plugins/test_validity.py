"""The kubernetes plugin's validity checks: shared within a snapshot, made of strings kept once,
and ending exactly when a key an answer read changes."""

from __future__ import annotations

from dataclasses import dataclass

from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.objects import Namespace
from kdns.plugins.validity import MAX_SHARED_CHECKS, Checks


@dataclass
class Owner:
    index: ClusterIndex


def _synced() -> tuple[IndexBuilder, Owner]:
    builder = IndexBuilder()
    builder.require({"Namespace"})
    builder.mark_synced("Namespace")
    builder.upsert(Namespace("shop", ()))
    builder.upsert(Namespace("bank", ()))
    return builder, Owner(builder.publish())


def _deps(ns: str, svc: str) -> tuple[tuple[str, str], ...]:
    # Each query parses its own strings: equal, never the same objects.
    return (("".join(ns), "".join(svc)), ("", "".join(ns)))


def test_answers_of_one_snapshot_with_the_same_keys_share_a_check() -> None:
    _, owner = _synced()
    checks = Checks(owner)
    a = checks.check(owner.index, _deps("shop", "web"))
    aaaa = checks.check(owner.index, _deps("shop", "web"))
    other = checks.check(owner.index, _deps("shop", "api"))
    assert a is aaaa
    assert other is not a
    assert a() and other()


def test_namespace_strings_are_kept_once() -> None:
    _, owner = _synced()
    checks = Checks(owner)
    web = checks.check(owner.index, _deps("shop", "web"))
    api = checks.check(owner.index, _deps("shop", "api"))
    web_keys, api_keys = web._deps, api._deps
    assert web_keys is not None and api_keys is not None
    assert web_keys[1] is api_keys[1]  # ("", "shop"): one tuple
    assert web_keys[0][0] is api_keys[0][0] is web_keys[1][1]  # "shop": one string


def test_a_check_ends_when_its_keys_change_and_survives_other_changes() -> None:
    builder, owner = _synced()
    checks = Checks(owner)
    shop = checks.check(owner.index, _deps("shop", "web"))
    bank = checks.check(owner.index, _deps("bank", "web"))
    builder.upsert(Namespace("bank", (("changed", "yes"),)))
    owner.index = builder.publish()
    assert shop()
    assert not bank()
    # A new snapshot hands out new checks, made from its versions.
    fresh = checks.check(owner.index, _deps("bank", "web"))
    assert fresh is not bank and fresh()


def test_the_shared_table_is_bounded() -> None:
    _, owner = _synced()
    checks = Checks(owner)
    first = checks.check(owner.index, _deps("shop", "svc-0"))
    for i in range(1, MAX_SHARED_CHECKS + 1):  # a flood of names, each its own service
        checks.check(owner.index, _deps("shop", f"svc-{i}"))
    assert len(checks._by_deps) <= MAX_SHARED_CHECKS
    assert checks.check(owner.index, _deps("shop", "svc-0")) is not first
    assert first()  # a check handed out before stays right

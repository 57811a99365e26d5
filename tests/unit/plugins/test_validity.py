"""The kubernetes plugin's validity checks: small (namespace strings kept once), and ending
exactly when a key an answer read changes."""

from __future__ import annotations

from dataclasses import dataclass

from kdns.cluster import clustername
from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.objects import Namespace
from kdns.plugins.validity import Checks


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
    # As a query's parse gives them: its own strings, equal but never the same objects.
    deps = clustername.dependencies(("".join(svc), "".join(ns), "svc"), "disabled")
    assert deps is not None
    return deps


def test_a_check_without_keys_is_one_per_snapshot_and_ends_with_it() -> None:
    builder, owner = _synced()
    checks = Checks(owner)
    first = checks.check(owner.index, None)
    assert checks.check(owner.index, None) is first and first()
    builder.upsert(Namespace("dev", ()))
    owner.index = builder.publish()
    assert not first()
    after = checks.check(owner.index, None)
    assert after is not first and after()


def test_namespace_strings_are_kept_once() -> None:
    _, owner = _synced()
    checks = Checks(owner)
    web = checks.check(owner.index, _deps("shop", "web"))
    api = checks.check(owner.index, _deps("shop", "api"))
    web_keys, api_keys = web._deps, api._deps
    assert web_keys is not None and api_keys is not None
    assert web_keys[0][0] is api_keys[0][0] is api_keys[1][1]  # "shop": one string


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

"""Metric families on an injected CollectorRegistry, created once per registry.

Two servers in one process (tests, or a reload that builds a new Instance) must not collide, and a
plugin used in two server blocks must share one family: `counter()`, `gauge()` and `histogram()`
return the family already registered under that name in that registry, or create it.
Names and labels follow CoreDNS (coredns_*), so dashboards and alerts carry over.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

# client_golang has no `*_created` series; CoreDNS dashboards and alerts do not expect them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# CoreDNS plugin.TimeBuckets: ExponentialBuckets(0.00025, 2, 16).
TIME_BUCKETS = tuple(0.00025 * 2**i for i in range(16))
# CoreDNS plugin.SizeBuckets.
SIZE_BUCKETS = (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3)

_families: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


class Flushable(Protocol):
    def flush(self) -> None: ...


# Objects that hold counts not yet added to the registry's series (the fast path counts hits in
# batches); every collection flushes them first, so a scrape always reads exact values.
_flushers: weakref.WeakKeyDictionary[CollectorRegistry, weakref.WeakSet[Any]] = (
    weakref.WeakKeyDictionary()
)


def add_flusher(registry: CollectorRegistry, target: Flushable) -> None:
    _flushers.setdefault(registry, weakref.WeakSet()).add(target)


def flush(registry: CollectorRegistry | None) -> None:
    if registry is None:
        return
    for target in list(_flushers.get(registry, ())):
        target.flush()


class Cell:
    """One counter series. A plain attribute add: prometheus-client's `inc()` takes a lock and
    costs several times more, and counters are bumped on the query path (fast-path hits too)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Counter(Collector):
    """A counter family with prometheus-client's `labels(...).inc()` shape, read at scrape time."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name if name.endswith("_total") else name + "_total"
        self.documentation = documentation
        self.labelnames = labelnames
        self.registry = registry
        self._cells: dict[tuple[str, ...], Cell] = {}
        if not labelnames:
            self._cells[()] = Cell()
        registry.register(self)

    def labels(self, *values: str, **named: str) -> Cell:
        key = tuple(values) if values else tuple(named[n] for n in self.labelnames)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = Cell()
        return cell

    def inc(self, amount: float = 1.0) -> None:
        self._cells[()].value += amount

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        flush(self.registry)
        fam = self._family()
        for key, cell in list(self._cells.items()):
            fam.add_metric(list(key), cell.value)
        return [fam]


M = TypeVar("M", Counter, Gauge, Histogram)


def _get(registry: CollectorRegistry, name: str, make: type[M], **kw: Any) -> M:
    families = _families.setdefault(registry, {})
    found = families.get(name)
    if found is None:
        found = make(name, registry=registry, **kw)
        families[name] = found
    if not isinstance(found, make):
        raise TypeError(f"metric {name} already registered as {type(found).__name__}")
    return found


def counter(
    registry: CollectorRegistry, name: str, doc: str, labels: Sequence[str] = ()
) -> Counter:
    return _get(registry, name, Counter, documentation=doc, labelnames=tuple(labels))


def gauge(registry: CollectorRegistry, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
    return _get(registry, name, Gauge, documentation=doc, labelnames=tuple(labels))


def histogram(
    registry: CollectorRegistry,
    name: str,
    doc: str,
    labels: Sequence[str] = (),
    buckets: Sequence[float] = TIME_BUCKETS,
) -> Histogram:
    return _get(
        registry,
        name,
        Histogram,
        documentation=doc,
        labelnames=tuple(labels),
        buckets=tuple(buckets),
    )

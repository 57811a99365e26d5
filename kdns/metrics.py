"""Metric families on an injected CollectorRegistry, created once per registry.

Two servers in one process (tests, or a reload that builds a new Instance) must not collide, and a
plugin used in two server blocks must share one family: `counter()`, `gauge()` and `histogram()`
return the family already registered under that name in that registry, or create it.
Names and labels follow CoreDNS (coredns_*), so dashboards and alerts carry over.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# client_golang has no `*_created` series; CoreDNS dashboards and alerts do not expect them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# CoreDNS plugin.TimeBuckets: ExponentialBuckets(0.00025, 2, 16).
TIME_BUCKETS = tuple(0.00025 * 2**i for i in range(16))
# CoreDNS plugin.SizeBuckets.
SIZE_BUCKETS = (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3)

_families: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
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

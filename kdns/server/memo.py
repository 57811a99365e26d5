"""What plugins say about re-serving a reply from the fast path without running them again.

While a query runs through the chain, plugins annotate the current `Memo` (a context variable the
dispatcher sets): the plugin that produced the answer `allow()`s it with a validity check (the
kubernetes plugin: "while my index snapshot is this one"), the cache bounds it in time and asks
to be told of each fast hit (so its hit counters stay right), loadbalance asks for shuffling,
and anything whose answer depends on more than the question bytes (the client's address, an
upstream without a cache, per-query logging) calls `deny()`. Nothing is memoised unless some
plugin allowed it and none denied it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Memo:
    allowed: bool = False
    denied: bool = False
    until: float = float("inf")  # time.monotonic() deadline
    checks: list[Callable[[], bool]] = field(default_factory=list)
    on_hit: list[Callable[[], None]] = field(default_factory=list)
    shuffle: bool = False

    def allow(self, check: Callable[[], bool] | None = None) -> None:
        self.allowed = True
        if check is not None:
            self.checks.append(check)

    def deny(self) -> None:
        self.denied = True

    def bound(self, deadline: float) -> None:
        self.until = min(self.until, deadline)

    @property
    def usable(self) -> bool:
        return self.allowed and not self.denied


current: contextvars.ContextVar[Memo | None] = contextvars.ContextVar("kdns_memo", default=None)


def get() -> Memo | None:
    """The memo of the query being answered, or None outside the dispatcher (tools, tests)."""
    return current.get()


def deny() -> None:
    m = current.get()
    if m is not None:
        m.deny()

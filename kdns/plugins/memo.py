"""What plugins say about re-serving a reply from the fast path without running them again.

While a query runs through the chain, plugins annotate the current `Memo` (a context variable the
dispatcher sets): the plugin that produced the answer `allow()`s it with a validity check (the
kubernetes plugin: "while my index generation is this one"), the cache bounds it in time, asks
for its TTLs to count down, and asks to be told of each fast hit (so its hit counters stay
right), loadbalance asks for shuffling, and anything whose answer depends on more than the
question bytes (the client's address, an upstream without a cache, prefetching) calls `deny()`.
Nothing is memoised unless some plugin allowed it and none denied it. The cache keeps the
validity checks given for a reply it stores, so its own entries end with the same checks.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Memo:
    allowed: bool = False
    denied: bool = False
    until: float = float("inf")  # time.monotonic() deadline
    checks: list[Callable[[], bool]] = field(default_factory=list)
    # Told how many times the bytes were served again (in batches: see FastPath.flush).
    on_hit: list[Callable[[int], None]] = field(default_factory=list)
    shuffle: bool = False
    # The plugin the fast path's re-serves are credited to in metrics (the cache, for the bytes
    # of its entries); empty: the plugin that wrote the reply.
    credit: str = ""
    # (monotonic time at which the reply's records had age 0, age in whole seconds already
    # subtracted from the TTLs of the encoded reply): TTLs then count down on every hit.
    countdown: tuple[float, int] | None = None

    def allow(self, check: Callable[[], bool] | None = None) -> None:
        self.allowed = True
        # The cache passes on the check the plugin behind it gave: keep one of each, or every
        # hit served from bytes would run it twice.
        if check is not None and check not in self.checks:
            self.checks.append(check)

    def deny(self) -> None:
        self.denied = True

    def bound(self, deadline: float) -> None:
        self.until = min(self.until, deadline)

    def count_down(self, born: float, age: int) -> None:
        self.countdown = (born, age)

    @property
    def usable(self) -> bool:
        return self.allowed and not self.denied


def every(checks: Sequence[Callable[[], bool]]) -> Callable[[], bool] | None:
    """One check that holds while all of `checks` do (None when there are none)."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    fixed = tuple(checks)
    return lambda: all(c() for c in fixed)


current: contextvars.ContextVar[Memo | None] = contextvars.ContextVar("kdns_memo", default=None)


def get() -> Memo | None:
    """The memo of the query being answered, or None outside the dispatcher (tools, tests)."""
    return current.get()


def deny() -> None:
    m = current.get()
    if m is not None:
        m.deny()

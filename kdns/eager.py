"""Run a coroutine at once, in the caller, and make a task of it only if it has to wait.

Nearly every query a cluster DNS server answers never waits on anything: the index, the cache
and the reply table are in memory. A task per datagram costs more than answering such a query
(creating it, scheduling its first step, its done callbacks); here the coroutine is stepped
synchronously, and only when it suspends (a forwarded query awaiting its upstream) does the rest
of it continue in a task. This is what Python 3.12's `asyncio.eager_task_factory` does, for
the one call site that needs it, on every Python kdns supports.

The first step runs in a fresh copy of the caller's context, and a task continuing it keeps
that same context, so context variables set before the suspension (the dispatcher's memo) are
still set, and reset, in the context they were set in.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class WouldWait(Exception):
    """The coroutine had to wait where waiting was not allowed; it has been closed."""


def start(
    coro: Coroutine[Any, Any, T],
    loop: asyncio.AbstractEventLoop,
    name: str,
    *,
    may_wait: bool = True,
) -> T | asyncio.Task[T]:
    """The result when `coro` finished without waiting, else the task finishing it (so `T`
    must not itself be a Task). An exception of the first step propagates, as from `await`.
    With `may_wait` false a coroutine that suspends is closed (its `finally` blocks run) and
    WouldWait raised: a caller at its bound on waiting work still answers what needs none."""
    context = contextvars.copy_context()
    try:
        awaited = context.run(coro.send, None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    if not may_wait:
        context.run(coro.close)
        raise WouldWait
    return loop.create_task(_Continuation(coro, awaited), name=name, context=context)


class _Continuation(Coroutine[Any, Any, T]):
    """What the task runs: its first step hands it the future the coroutine already waits on;
    from then on it is the coroutine (sends, throws and closes pass straight through). A class,
    not a wrapping coroutine, so a cancellation arriving before that first step still reaches
    the coroutine (a coroutine that never started cannot catch what is thrown into it)."""

    __slots__ = ("_awaited", "_coro", "_started")

    def __init__(self, coro: Coroutine[Any, Any, T], awaited: Any) -> None:
        self._coro = coro
        self._awaited = awaited
        self._started = False

    def send(self, value: Any) -> Any:
        if not self._started:
            self._started = True
            return self._awaited
        return self._coro.send(value)

    def throw(self, *exc: Any) -> Any:
        if not self._started:
            self._started = True
            if isinstance(self._awaited, asyncio.Future):
                self._awaited.cancel()  # nobody else waits on it: as Task.cancel() would
        return self._coro.throw(*exc)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, Any, T]:
        raise TypeError("a continuation is run by its task, not awaited")

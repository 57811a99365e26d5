"""Coroutines run at once, and continue as tasks only when they wait."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from kdns import eager

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("eager_test", default="unset")


async def _no_wait(value: int) -> int:
    return value * 2


async def test_a_coroutine_that_never_waits_returns_its_result_without_a_task() -> None:
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    assert eager.start(_no_wait(21), loop, "t") == 42
    assert asyncio.all_tasks() == before


async def test_a_coroutine_that_waits_continues_in_a_task_with_its_context() -> None:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[str] = loop.create_future()
    seen: list[str] = []

    async def work() -> str:
        token = VAR.set("inside")
        try:
            got = await gate
            seen.append(VAR.get())
            await asyncio.sleep(0)  # a bare yield is passed on too
            return got + "!"
        finally:
            VAR.reset(token)  # in the context it was set in: no ValueError

    task = eager.start(work(), loop, "t")
    assert isinstance(task, asyncio.Task)
    assert VAR.get() == "unset"  # the caller's context is untouched
    gate.set_result("done")
    assert await task == "done!"
    assert seen == ["inside"]


async def test_cancelling_the_task_reaches_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    cleaned = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()

    task = eager.start(work(), loop, "t")
    assert isinstance(task, asyncio.Task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


async def test_an_exception_after_waiting_is_the_tasks() -> None:
    loop = asyncio.get_running_loop()

    async def work() -> None:
        await asyncio.sleep(0)
        raise LookupError("late")

    task = eager.start(work(), loop, "t")
    assert isinstance(task, asyncio.Task)
    with pytest.raises(LookupError, match="late"):
        await task


async def test_an_exception_before_waiting_is_raised_at_once() -> None:
    async def work() -> None:
        raise LookupError("early")

    with pytest.raises(LookupError, match="early"):
        eager.start(work(), asyncio.get_running_loop(), "t")


async def test_where_waiting_is_not_allowed_the_coroutine_is_closed() -> None:
    closed: list[str] = []

    async def work() -> None:
        token = VAR.set("inside")
        try:
            await asyncio.sleep(3600)
        finally:
            VAR.reset(token)
            closed.append("yes")

    with pytest.raises(eager.WouldWait):
        eager.start(work(), asyncio.get_running_loop(), "t", may_wait=False)
    assert closed == ["yes"]
    assert eager.start(_no_wait(1), asyncio.get_running_loop(), "t", may_wait=False) == 2

"""Wait for a condition with a deadline (never a bare sleep-and-hope)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(predicate: Callable[[], bool], timeout: float = 5.0, every: float = 0.01) -> None:
    """Return once `predicate()` holds; fail the test if it does not within `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(every)


async def until_true(
    check: Callable[[], Awaitable[bool]], timeout: float = 5.0, every: float = 0.05
) -> None:
    """Like `until`, for a check that must itself await (e.g. ask a server)."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(every)

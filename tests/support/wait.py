"""Bounded waiting on a condition the test does not own (counters, flags of the server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(cond: Callable[[], object], timeout: float = 5.0, every: float = 0.02) -> None:
    """Return once `cond()` is true; TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110  (polling with a deadline, no event to wait on)
            await asyncio.sleep(every)

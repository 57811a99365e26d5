"""The plugin contract's helpers: tasks started while serving have an owner."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kdns.plugins.base import TaskSet
from tests.support.waiting import eventually


async def test_a_task_set_reports_failures_and_ends_the_rest_on_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet()
    ended = asyncio.Event()

    async def fails() -> None:
        raise RuntimeError("refresh broke")

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    with caplog.at_level(logging.ERROR, logger="kdns"):
        tasks.start(fails(), "cache refresh a.example.")
        tasks.start(waits(), "healthcheck 192.0.2.1:53")
        await eventually(lambda: len(tasks) == 1)
    assert "task cache refresh a.example. failed" in caplog.text
    assert "refresh broke" in caplog.text
    await tasks.close()
    assert ended.is_set() and len(tasks) == 0

"""Test-wide settings."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import settings

from tests.support.waiting import eventually

# CI runs the property tests with a fixed seed, so a green run stays green on the same code;
# developers' runs stay random and keep finding new cases (failures are saved in .hypothesis/).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# A test that leaves asyncio tasks running fails (kopf's `_no_asyncio_pending_tasks`): a task
# nobody owns is a reload or a shutdown that does not stop everything it started. Tasks still
# finishing their cancellation get a bounded moment to end.
LEAK_GRACE = 2.0


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield

    def leaked() -> list[asyncio.Task[Any]]:
        me = asyncio.current_task()
        return [t for t in asyncio.all_tasks() - before if t is not me and not t.done()]

    with contextlib.suppress(TimeoutError):
        await eventually(lambda: not leaked(), timeout=LEAK_GRACE)
    names = sorted(t.get_name() + ": " + repr(t.get_coro()) for t in leaked())
    for task in leaked():
        task.cancel()
    assert not names, f"the test left asyncio tasks running: {names}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.fixturenames.insert(0, "no_leaked_tasks")

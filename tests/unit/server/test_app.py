"""A configuration's lifecycle: every plugin's running part entered and left by one owner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from kdns.config import from_text
from kdns.dns.message import Reply, Request
from kdns.plugins.base import Handler, Plugin, Service, background
from kdns.server.app import Instance
from tests.support.waiting import eventually


class Worker(Service):
    """A plugin whose running part records what happened to it."""

    def __init__(self, name: str, events: list[str], *, gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.events = events
        self.gate = gate  # entering waits for it (a source's first sync)
        self.fail_entering: Exception | None = None
        self.fail_running = asyncio.Event()

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        return await call_next(request)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.events.append(f"enter {self.name}")
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_entering is not None:
            raise self.fail_entering
        try:
            async with background(self._work, f"{self.name} work"):
                yield
        finally:
            self.events.append(f"leave {self.name}")

    async def _work(self) -> None:
        await self.fail_running.wait()
        raise RuntimeError(f"{self.name} broke")


class Plain:
    """A plugin without a running part."""

    name = "plain"

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        return await call_next(request)


def instance(*plugins: Plugin) -> Instance:
    config = from_text(".:1053 {\n whoami\n}\n", "Corefile")
    return Instance(config, CollectorRegistry(), plugins=list(plugins))


async def test_running_parts_are_entered_together_and_left_by_stop() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    slow, quick = Worker("slow", events, gate=gate), Worker("quick", events)
    inst = instance(slow, Plain(), quick)
    starting = asyncio.create_task(inst.start())
    # The slow one waits for its gate; the quick one is entered meanwhile, not after it.
    await eventually(lambda: "enter quick" in events)
    assert not starting.done()
    gate.set()
    await starting
    assert sorted(events) == ["enter quick", "enter slow"]
    await inst.stop()
    assert sorted(events[2:]) == ["leave quick", "leave slow"]


async def test_a_plugin_that_cannot_start_fails_the_configuration_and_stops_the_rest() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    good, bad = Worker("good", events), Worker("bad", events, gate=gate)
    bad.fail_entering = OSError("address in use")
    inst = instance(good, bad)
    starting = asyncio.create_task(inst.start())
    await eventually(lambda: "enter good" in events)
    gate.set()
    with pytest.raises(OSError, match="address in use"):
        await starting
    assert "leave good" in events  # nothing of the failed configuration is left running


async def test_a_failure_while_running_is_reported_and_the_others_keep_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    broken, healthy = Worker("broken", events), Worker("healthy", events)
    inst = instance(broken, healthy)
    await inst.start()
    with caplog.at_level(logging.ERROR, logger="kdns"):
        broken.fail_running.set()
        await eventually(lambda: "leave broken" in events)
        await eventually(lambda: "plugin broken failed" in caplog.text)
    assert "broken broke" in caplog.text
    assert "leave healthy" not in events
    await inst.stop()
    assert "leave healthy" in events

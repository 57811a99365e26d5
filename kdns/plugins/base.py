"""The plugin contract: a Handler, the Plugin protocol, and what a plugin is built with.

A handler is `async (request) -> Reply`; a plugin is `async (request, call_next) -> Reply`
(aiohttp's middleware shape). Replies are frozen values, so no writer wrappers are needed.

Lifecycle. A plugin that only answers queries needs nothing more. A plugin with work of its own
(a source to sync, a file to watch, probes, pending log lines) subclasses `Service` and returns
that work from `running()` as an async context manager:

    class WatchPlugin(Service):
        @contextlib.asynccontextmanager
        async def running(self) -> AsyncIterator[None]:
            await self.refresh()                      # before serving (CoreDNS's OnStartup)
            async with background(self._watch, "watch FILE"):
                yield                                 # the configuration serves
            self.flush()                              # replaced or shut down (OnShutdown)

- One owner: the server enters the running parts of all plugins of a configuration under one
  TaskGroup (each in its own task, all concurrently, so one slow source does not hold up the
  rest) before that configuration serves, and exits them all when a reload replaces it or the
  server stops. Nothing else starts or stops a plugin.
- Entering is starting: reach `yield` once ready to serve. A failure while entering fails the
  configuration (a reload keeps the old one serving; at startup the server exits with it).
- A failure afterwards (raised out of the context, or by a `background` task, which the context
  re-raises) is logged with the plugin's name; the other plugins keep running.
- A task started while serving (a cache refresh, an upstream's health probe) goes into the
  plugin's `TaskSet`, which its running part closes on exit: no bare `asyncio.create_task`.
- Work that needs the configuration's listeners open (loop's self-probe) waits on
  `BuildContext.serving`, set once the configuration serves queries.
- `/ready` asks the plugins that subclass `Readiness` (kubernetes: synced once).

Both are declared by subclassing, so the server finds them by type, never by attribute name.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from prometheus_client import CollectorRegistry

from kdns.corefile import Directive
from kdns.dns.message import Reply, Request

Handler = Callable[[Request], Awaitable[Reply]]

log = logging.getLogger("kdns.plugins")
T = TypeVar("T")


@runtime_checkable
class Plugin(Protocol):
    name: str

    async def __call__(self, request: Request, call_next: Handler) -> Reply: ...


class Service(abc.ABC):
    """A plugin with work of its own, run by the server while the plugin's configuration is
    in use (see the module docstring)."""

    name: str

    @abc.abstractmethod
    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The plugin's running part: entered before it serves, exited when it stops."""


class Readiness(abc.ABC):
    """A plugin `/ready` asks (kubernetes: ready after its first sync with the API)."""

    name: str

    @abc.abstractmethod
    def ready(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What a directive's parser may know about its server block."""

    zones: tuple[str, ...]
    port: int
    file: str
    line: int


@dataclass(slots=True)
class BuildContext:
    """What a plugin is built with. `lookup` re-enters the whole server (CoreDNS's upstream)."""

    block: BlockInfo
    server: str  # metrics label, e.g. "dns://:53"
    registry: CollectorRegistry
    lookup: Handler
    built: dict[str, Plugin] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    bind: tuple[str, ...] = ()
    # Stop the whole server with this message and a non-zero exit (CoreDNS's log.Fatal).
    fatal: Callable[[str], None] = field(default=lambda msg: _no_fatal(msg))
    # Set once the configuration serves queries (its listeners are open).
    serving: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def background(
    work: Callable[[], Coroutine[Any, Any, None]], name: str
) -> AsyncIterator[None]:
    """Run `work()` as a named task while the context is open: cancelled on exit, and a failure
    of it is raised from the context rather than lost (a TaskGroup owns it)."""
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(work(), name=name)
        try:
            yield
        finally:
            task.cancel()


class TaskSet:
    """The tasks a plugin starts while it serves (a cache refresh, an upstream's health probe,
    one upstream exchange shared by identical queries): each held until it ends, a failure
    logged with the task's name, the rest cancelled and awaited by `close()`, which the plugin's
    running part calls on exit. Tasks may start outside a running part too (a plugin driven
    directly, as in tests); closing still ends them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _no_fatal(msg: str) -> None:
    raise RuntimeError(f"fatal: {msg}")


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """One Corefile directive: how to read it and, for query plugins, how to build it.

    `build` is None for server-level directives (bind, health, ready, ...) whose parsed config
    the application reads directly.
    """

    name: str
    parse: Callable[[Directive, BlockInfo], Any]
    build: Callable[[Any, BuildContext], Plugin] | None = None
    repeatable: bool = False
    # For a directive that may repeat in a block but runs as one plugin (log, forward): folds
    # the config of a later occurrence into the earlier one's.
    merge: Callable[[Any, Any], Any] | None = None

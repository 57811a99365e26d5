"""The plugin contract: a Handler, the Plugin protocol, and what a plugin is built with.

A handler is `async (request) -> Reply`; a plugin is `async (request, call_next) -> Reply`
(aiohttp's middleware shape). Replies are frozen values, so no writer wrappers are needed.
Optional hooks are found by attribute: `ready() -> bool`, `async start()`, `async stop()`, and
`live()`, called once the plugin's Instance serves queries (after its listeners are open).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry

from kdns.corefile import Directive
from kdns.dns.message import Reply, Request

Handler = Callable[[Request], Awaitable[Reply]]


@runtime_checkable
class Plugin(Protocol):
    name: str

    async def __call__(self, request: Request, call_next: Handler) -> Reply: ...


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

"""Refreshing cache entries in the background, and serving stale ones (RFC 8767), as CoreDNS 1.14.

An expired entry may be served for `serve_stale DURATION` past its TTL:

- `immediate` (the default) answers with the stale entry at once and refreshes it in the
  background, one refresh per entry at a time;
- `verify` asks upstream first and answers with the stale entry only when that fails: a
  SERVFAIL, REFUSED or other error rcode, a truncated reply, a timeout. With VERIFY_TIMEOUT the
  client waits at most that long; the refresh goes on and its answer is cached for the next one.
- FAILURE_RECHECK: after a failed refresh, the entry is served stale for that long without a
  new attempt, so an upstream that is down is not asked again for every query. While a refresh
  is under way (with FAILURE_RECHECK or VERIFY_TIMEOUT), other `verify` requests for the entry
  wait for it rather than asking again.
- A failed refresh never replaces what was cached: the stale answer, positive or negative,
  stays until the stale window ends.
- `serve_stale_policy prefer_positive`: a positive answer, even stale, is served before a
  denial or a failure of the same name; in `verify` mode an upstream answer that does not
  answer the question does not replace it for the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kdns.dns.message import NOERROR, NXDOMAIN, Reply
from kdns.plugins.cache.config import CacheConfig
from kdns.plugins.cache.store import Entry

log = logging.getLogger("kdns.cache")

Run = Callable[[], Awaitable[Reply | None]]  # one upstream attempt: the reply, None if unusable


def usable(reply: Reply) -> bool:
    """Whether a refresh succeeded: a complete answer or denial (CoreDNS accepts the same)."""
    return reply.rcode in (NOERROR, NXDOMAIN) and not reply.tc


def answers(reply: Reply) -> bool:
    return reply.rcode == NOERROR and bool(reply.answer)


class Refresher:
    """The refreshes under way: at most one per entry, each a task the plugin can stop."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.tasks: set[asyncio.Task[Reply | None]] = set()

    def start(
        self, entry: Entry, run: Run, recheck: float, name: str
    ) -> asyncio.Task[Reply | None] | None:
        """Refresh `entry` in the background, unless a refresh is under way or a failed one is
        too recent (`recheck`); None then."""
        if entry.refreshing or self.clock() < entry.retry_after:
            return None
        entry.refreshing = True

        async def go() -> Reply | None:
            fresh: Reply | None = None
            try:
                fresh = await run()
            except Exception:
                log.exception("cache: refreshing an entry failed")
            finally:
                entry.refreshing = False
                if fresh is None and recheck > 0:
                    entry.retry_after = self.clock() + recheck
            return fresh

        task = asyncio.create_task(go(), name=name)
        entry.refresh = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def refresh_stale(
    cfg: CacheConfig,
    refresher: Refresher,
    entry: Entry,
    run: Run,
    fresh: Callable[[], Reply | None],
    name: str,
) -> Reply | None:
    """A request found only a stale `entry`: the fresh reply to answer with, or None to serve
    the stale one. `fresh()` is what the cache holds now, if fresh."""
    if not cfg.verify_stale:
        refresher.start(entry, run, cfg.stale_recheck, name)
        return None
    if not (cfg.stale_recheck or cfg.verify_timeout):
        # Plain `verify`: every request asks upstream itself before settling for stale.
        try:
            return await run()
        except Exception:
            log.exception("cache: verifying a stale entry failed")
            return None
    timeout = cfg.verify_timeout or None
    task = refresher.start(entry, run, cfg.stale_recheck, name)
    if task is not None:
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return task.result() if done else None  # on timeout the refresh goes on for later
    under_way = entry.refresh
    if entry.refreshing and under_way is not None:
        done, _ = await asyncio.wait({under_way}, timeout=timeout)
        if done:
            return fresh()
    return None  # within FAILURE_RECHECK of a failed refresh: stale, without asking

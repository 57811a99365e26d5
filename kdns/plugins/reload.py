"""`reload [INTERVAL [JITTER]]`: pick up an edited Corefile without a restart.

Every INTERVAL (default 30s, at least 2s) plus or minus half of JITTER (default 15s, at least 1s,
0 for none, at most INTERVAL/2) the Corefile's SHA512 is compared with the running one; a change
is loaded and swapped in under the same sockets (`App.activate`). A broken file keeps the old
configuration serving, is logged with file:line and counted in `coredns_reload_failed_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from kdns import metrics
from kdns.corefile import CorefileError, Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec, background

log = logging.getLogger("kdns")

DEFAULT_INTERVAL = 30.0
DEFAULT_JITTER = 15.0
MIN_INTERVAL = 2.0
MIN_JITTER = 1.0


@dataclass(frozen=True, slots=True)
class ReloadConfig:
    interval: float = DEFAULT_INTERVAL
    jitter: float = DEFAULT_JITTER


def parse(d: Directive, block: BlockInfo) -> ReloadConfig:
    parsing.arg_count(d, 0, 2, "reload [INTERVAL [JITTER]]")
    parsing.no_block(d)
    interval = DEFAULT_INTERVAL
    jitter = DEFAULT_JITTER
    if d.args:
        interval = parsing.duration(d.args[0], minimum=MIN_INTERVAL)
    if len(d.args) > 1:
        jitter = parsing.duration(d.args[1])
        if 0 < jitter < MIN_JITTER:  # 0 turns the jitter off, as in CoreDNS
            raise d.args[1].error(f"jitter {d.args[1].text} is below the minimum of 1s")
    return ReloadConfig(interval, min(jitter, interval / 2))


SPEC = PluginSpec("reload", parse, None)


class Reloader:
    """The process-wide part of `reload`: the watch loop, the reload metrics, and `check`.

    `current()` gives the running configuration's path and `reload` stanzas; `load(text, path)`
    parses, builds, starts and swaps in a new configuration, raising CorefileError for a broken
    Corefile and any other error if it cannot start (the old configuration keeps serving).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        current: Callable[[], tuple[str, Sequence[ReloadConfig]]],
        load: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._current = current
        self._load = load
        self._changed = asyncio.Event()
        self._version: str | None = None
        self._last_seen: str | None = None
        self.failed = metrics.counter(
            registry,
            "coredns_reload_failed_total",
            "Counter of the number of failed reload attempts.",
        )
        self.info = metrics.gauge(
            registry,
            "coredns_reload_version_info",
            "A metric with a constant '1' value labeled by hash, and value which type of hash "
            "generated.",
            ("hash", "value"),
        )

    def live(self, digest: str) -> None:
        """A configuration whose Corefile has this SHA512 now serves."""
        if self._version != digest:
            if self._version is not None:
                with contextlib.suppress(KeyError):
                    self.info.remove("sha512", self._version)
            self.info.labels("sha512", digest).set(1)
            self._version = digest
        self._last_seen = digest
        self._changed.set()

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The watch loop runs while this context is open."""
        return background(self._watch, "reload")

    async def _watch(self) -> None:
        await self._changed.wait()  # the first configuration serves
        while True:
            _, settings = self._current()
            if not settings:  # no `reload` in this configuration: wait for the next one
                self._changed.clear()
                await self._changed.wait()
                continue
            cfg = settings[0]
            await asyncio.sleep(cfg.interval + random.uniform(-cfg.jitter / 2, cfg.jitter / 2))
            try:
                await self.check()
            except Exception:
                log.exception("plugin/reload: checking the Corefile failed")

    async def check(self) -> bool:
        """Load the Corefile if its SHA512 changed; True if a new configuration now serves."""
        path, _ = self._current()
        try:
            data = await asyncio.to_thread(Path(path).read_bytes)
        except OSError as exc:
            log.warning("plugin/reload: cannot read %s: %s", path, exc.strerror)
            return False
        digest = hashlib.sha512(data).hexdigest()
        if digest == self._last_seen:
            return False
        self._last_seen = digest  # a broken file is reported once, not every interval
        log.info("Reloading")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._failed(f"{path}:0: Corefile is not UTF-8 text: {exc.reason}")
        try:
            await self._load(text, path)
        except CorefileError as exc:
            return self._failed(str(exc))
        except Exception as exc:
            return self._failed(f"{path}: {exc}")
        log.info("plugin/reload: Running configuration SHA512 = %s", digest)
        return True

    def _failed(self, why: str) -> bool:
        self.failed.inc()
        log.error("Restart failed: %s", why)
        log.error("plugin/reload: Corefile changed but reload failed; keeping the running one")
        return False

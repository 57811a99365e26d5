"""Operating the server: probes, metrics exposition, query counting, live reload, lameduck.

The App calls four hooks: `attach` (synchronously, on a freshly built Instance, before it can see
a query), `prepare` (opens or re-routes the HTTP listeners; failing aborts the activation so the
old configuration keeps serving), `live` (after the swap) and `close`. Everything here is
process-wide, as CoreDNS's health, ready, prometheus and reload are: one listener per address,
counters that survive reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import platform
import random
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kdns import __version__, metrics
from kdns.config import Config, from_text
from kdns.corefile import CorefileError
from kdns.dns.message import Reply, Request
from kdns.server.fastpath import Entry
from kdns.server.http import HostPort, HttpEndpoints, HttpHandler
from kdns.server.recorder import DROPPED, FastHandle, QueryRecorder

if TYPE_CHECKING:
    from kdns.server.app import App, Instance

log = logging.getLogger("kdns")


# CoreDNS health: a self-check each second, with plugin.SlimTimeBuckets.
HEALTH_CHECK_INTERVAL = 1.0
HEALTH_CHECK_TIMEOUT = 1.0
HEALTH_BUCKETS = (0.00025, 0.0025, 0.025, 0.25, 2.5)


def _entries(config: Config, name: str) -> list[Any]:
    return [e.config for b in config.blocks for e in b.all(name)]


def lameduck_of(config: Config) -> float:
    return max((h.lameduck for h in _entries(config, "health")), default=0.0)


class _PluginEnabled(Collector):
    """`coredns_plugin_enabled{server,zone,view,name}` for the blocks that enable prometheus."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "coredns_plugin_enabled",
            "A metric that indicates whether a plugin is enabled on per server and zone basis.",
            labels=("server", "zone", "view", "name"),
        )
        inst = self.app.instance
        if inst is not None:
            for (block, built), server in zip(inst.block_plugins, inst.block_labels, strict=True):
                if block.get("prometheus") is None:
                    continue
                names = sorted({*built, "prometheus"})
                for zone in block.zones:
                    for name in names:
                        fam.add_metric([server, zone, "", name], 1)
        yield fam


class Operations:
    def __init__(self, app: App) -> None:
        self.app = app
        self.http = HttpEndpoints()
        self.recorder = QueryRecorder(app.registry)
        registry = app.registry
        registry.register(self.recorder)
        registry.register(_PluginEnabled(app))
        with contextlib.suppress(ValueError):  # already there if the registry is shared
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        metrics.gauge(
            registry,
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion "
            "from which CoreDNS was built.",
            ("version", "revision", "goversion"),
        ).labels(__version__, "", f"python{platform.python_version()}").set(1)
        self.reload_failed = metrics.counter(
            registry,
            "coredns_reload_failed_total",
            "Counter of the number of failed reload attempts.",
        )
        self.reload_info = metrics.gauge(
            registry,
            "coredns_reload_version_info",
            "A metric with a constant '1' value labeled by hash, and value which type of hash "
            "generated.",
            ("hash", "value"),
        )
        self.health_duration = metrics.histogram(
            registry,
            "coredns_health_request_duration_seconds",
            "Histogram of the time (in seconds) each request took.",
            buckets=HEALTH_BUCKETS,
        )
        self.health_failures = metrics.counter(
            registry,
            "coredns_health_request_failures_total",
            "The number of times the health check failed.",
        )
        self._health_task: asyncio.Task[None] | None = None
        self._metrics_handler = make_aiohttp_handler(registry)
        self._version: str | None = None
        self._last_seen: str | None = None
        self._reload_task: asyncio.Task[None] | None = None

    # -- per-query metrics --------------------------------------------------------------------

    def attach(self, inst: Instance) -> None:
        """Count queries of the blocks that enable prometheus, and every panic."""
        prom: set[tuple[str, int]] = set()
        for block in inst.config.blocks:
            if block.get("prometheus") is not None:
                prom.update((z, block.port) for z in block.zones)
        rec = self.recorder
        observe = rec.observe
        for (_, port), dispatcher in inst.dispatchers.items():
            dispatcher.on_panic.append(self.recorder.count_panic)
            servers = {z: r.server for r in dispatcher.routes for z in r.zones}
            enabled = {z for z in servers if (z, port) in prom}
            if not enabled:
                continue
            enabled.add(DROPPED)
            default = dispatcher.routes[0].server

            def observer(
                request: Request,
                reply: Reply,
                zone: str,
                seconds: float,
                size: int,
                _enabled: set[str] = enabled,
                _servers: dict[str, str] = servers,
                _default: str = default,
            ) -> None:
                if zone in _enabled:
                    observe(_servers.get(zone, _default), request, reply, zone, seconds, size)

            dispatcher.observers.append(observer)

            def fast_hit(
                entry: Entry,
                _enabled: set[str] = enabled,
                _servers: dict[str, str] = servers,
                _default: str = default,
            ) -> Callable[[int], None] | None:
                # An entry's first hit: `stat` is what the full path saw; resolve the counters
                # its hits bump once, and hand back what each hit calls.
                seen: tuple[Request, Reply, str] = entry.stat  # type: ignore[assignment]
                request, reply, zone = seen
                if zone not in _enabled:
                    return None
                server = _servers.get(zone, _default)
                return FastHandle(rec, server, request, reply, zone, entry.size).hit

            dispatcher.on_first_fast_hit.append(fast_hit)

    # -- HTTP endpoints -----------------------------------------------------------------------

    async def prepare(self, inst: Instance) -> None:
        wanted: dict[HostPort, dict[str, HttpHandler]] = {}
        for block, built in inst.block_plugins:
            for name, path, handler in (
                ("health", "/health", self._health),
                ("prometheus", "/metrics", self._metrics_handler),
            ):
                entry = block.get(name)
                if entry is not None:
                    wanted.setdefault(entry.config.address, {})[path] = handler
            ready = block.get("ready")
            if ready is not None:
                routes = wanted.setdefault(ready.config.address, {})
                members = list(getattr(routes.get("/ready"), "members", []))
                members.extend(p for p in built.values() if hasattr(p, "ready"))
                routes["/ready"] = self._ready_handler(members, ready.config.continuously)
        await self.http.configure(wanted)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="OK")

    def _ready_handler(self, members: list[Any], continuously: bool) -> HttpHandler:
        once: set[int] = set()  # ids of members that were ready (they live as long as this)

        async def ready(request: web.Request) -> web.StreamResponse:
            if self.app.lameduck or self.app.stopping.is_set():
                return web.Response(status=503, text="Shutting down")
            waiting = set()
            for p in members:
                if not continuously and id(p) in once:
                    continue
                if p.ready():
                    once.add(id(p))
                else:
                    waiting.add(p.name)
            if not waiting:
                return web.Response(text="OK")
            names = ",".join(sorted(waiting))
            log.info('plugin/ready: Plugins not ready: "%s"', names)
            return web.Response(status=503, text=names)

        ready.members = members  # type: ignore[attr-defined]  # merged across blocks
        return ready

    # -- reload -------------------------------------------------------------------------------

    def live(self, inst: Instance) -> None:
        digest = inst.config.digest
        if self._version != digest:
            if self._version is not None:
                with contextlib.suppress(KeyError):
                    self.reload_info.remove("sha512", self._version)
            self.reload_info.labels("sha512", digest).set(1)
            self._version = digest
        self._last_seen = digest
        if _entries(inst.config, "health") and (
            self._health_task is None or self._health_task.done()
        ):
            self._health_task = asyncio.create_task(self._self_check(), name="health-check")
        if _entries(inst.config, "reload") and (
            self._reload_task is None or self._reload_task.done()
        ):
            self._reload_task = asyncio.create_task(self._watch(), name="reload")

    async def _watch(self) -> None:
        while True:
            settings = _entries(self.app.config, "reload")
            if not settings or self.app.stopping.is_set():
                return
            cfg = settings[0]
            await asyncio.sleep(cfg.interval + random.uniform(-cfg.jitter / 2, cfg.jitter / 2))
            try:
                await self.check()
            except Exception:
                log.exception("plugin/reload: checking the Corefile failed")

    async def check(self) -> bool:
        """Load the Corefile if its SHA512 changed; True if a new configuration now serves."""
        path = self.app.config.path
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
            config = from_text(data.decode("utf-8"), path)
        except UnicodeDecodeError as exc:
            return self._failed(f"{path}:0: Corefile is not UTF-8 text: {exc.reason}")
        except CorefileError as exc:
            return self._failed(str(exc))
        try:
            await self.app.activate(config)
        except Exception as exc:
            return self._failed(f"{path}: {exc}")
        log.info("plugin/reload: Running configuration SHA512 = %s", digest)
        return True

    def _failed(self, why: str) -> bool:
        self.reload_failed.inc()
        log.error("Restart failed: %s", why)
        log.error("plugin/reload: Corefile changed but reload failed; keeping the running one")
        return False

    async def close(self) -> None:
        for task in (self._reload_task, self._health_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.http.close()

    async def _self_check(self) -> None:
        """CoreDNS's health plugin asks its own /health once a second and exports how long that
        took and how often it failed: a stalled event loop shows up there before it shows up as
        failed liveness probes."""
        timeout = aiohttp.ClientTimeout(total=HEALTH_CHECK_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.app.stopping.is_set():
                settings = _entries(self.app.config, "health")
                if not settings:
                    return
                host, port = settings[0].address
                url = f"http://{host or '127.0.0.1'}:{port}/health"
                if ":" in (host or ""):
                    url = f"http://[{host}]:{port}/health"
                start = time.perf_counter()
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                self.health_duration.observe(time.perf_counter() - start)
                if not ok:
                    self.health_failures.inc()
                await asyncio.sleep(HEALTH_CHECK_INTERVAL)

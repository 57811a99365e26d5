"""`health [ADDRESS] { lameduck DURATION }`: the liveness endpoint, `/health` answering 200 "OK".

Server-level and process-wide as in CoreDNS: every block that names the same address shares one
listener (default `:8080`); once a second the server asks its own /health and exports how long
that took (`coredns_health_request_duration_seconds`, `..._failures_total`). `lameduck` delays
shutdown: on SIGTERM the server keeps answering DNS (and /health) for DURATION so clients and
kube-proxy move away before the sockets close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from kdns import metrics
from kdns.corefile import CorefileError, Directive
from kdns.hostport import HostPort, show, split
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec, background

log = logging.getLogger("kdns")

DEFAULT_ADDRESS: HostPort = ("", 8080)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    address: HostPort = DEFAULT_ADDRESS
    lameduck: float = 0.0
    # Why the address cannot be listened on (`bla:a`), said when the server starts: CoreDNS
    # takes any HOST:PORT when it reads the Corefile and fails only when it listens.
    unusable: str | None = None


def parse(d: Directive, block: BlockInfo) -> HealthConfig:
    parsing.arg_count(d, 0, 1, "health [ADDRESS] { lameduck DURATION }")
    address = DEFAULT_ADDRESS
    unusable = None
    if d.args:
        tok = d.args[0]
        try:
            address = parsing.address(tok)
        except CorefileError as exc:
            try:
                host, _ = split(tok.text)
            except ValueError:
                raise exc from None  # not HOST:PORT at all (`health bla`): CoreDNS refuses it too
            address = (host, 0)
            unusable = f"{exc}: health cannot listen there"
    lameduck = 0.0
    for sub in d.block or ():
        if sub.name != "lameduck":
            raise parsing.unknown_property("health", sub, ("lameduck",))
        parsing.arg_count(sub, 1, 1, "lameduck DURATION")
        lameduck = parsing.duration(sub.args[0])
    return HealthConfig(address, lameduck, unusable)


SPEC = PluginSpec("health", parse, None)


# CoreDNS health: a self-check each second, with plugin.SlimTimeBuckets.
CHECK_INTERVAL = 1.0
CHECK_TIMEOUT = 1.0
CHECK_BUCKETS = (0.00025, 0.0025, 0.025, 0.25, 2.5)


def lameduck_seconds(settings: Iterable[HealthConfig]) -> float:
    """How long shutdown waits: the longest `lameduck` of any block."""
    return max((h.lameduck for h in settings), default=0.0)


async def lameduck(seconds: float) -> None:
    """Keep answering while clients and kube-proxy notice we are going (/ready says 503)."""
    log.info("plugin/health: Going into lameduck mode for %gs", seconds)
    await asyncio.sleep(seconds)


class Health:
    """The process-wide part of `health`: the /health handler and the self-check with its
    metrics. `settings()` gives the running configuration's `health` stanzas."""

    def __init__(
        self, registry: CollectorRegistry, settings: Callable[[], Sequence[HealthConfig]]
    ) -> None:
        self._settings = settings
        self._changed = asyncio.Event()
        self.duration = metrics.histogram(
            registry,
            "coredns_health_request_duration_seconds",
            "Histogram of the time (in seconds) each request took.",
            buckets=CHECK_BUCKETS,
        )
        self.failures = metrics.counter(
            registry,
            "coredns_health_request_failures_total",
            "The number of times the health check failed.",
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="OK")

    def live(self) -> None:
        """A new configuration serves: the self-check follows its address."""
        self._changed.set()

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The self-check runs while this context is open."""
        return background(self._self_check, "health-check")

    async def _self_check(self) -> None:
        """CoreDNS's health plugin asks its own /health once a second and exports how long that
        took and how often it failed: a stalled event loop shows up there before it shows up as
        failed liveness probes."""
        timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await self._changed.wait()  # the first configuration serves (and listens)
            while True:
                settings = self._settings()
                if not settings:  # no `health` in this configuration: wait for the next one
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                host, port = settings[0].address
                url = f"http://{show(host or '127.0.0.1', port)}/health"
                start = time.perf_counter()
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                self.duration.observe(time.perf_counter() - start)
                if not ok:
                    self.failures.inc()
                await asyncio.sleep(CHECK_INTERVAL)

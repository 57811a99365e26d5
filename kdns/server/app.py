"""The application: a Corefile turned into listeners and plugin chains, and its lifecycle.

Listeners are keyed by (address, port) and outlive configurations: a reload builds a new
`Instance` (plugins, chains, dispatchers) from the new Corefile, starts it, and swaps it in under
the existing sockets, so unchanged listeners keep serving without a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from kdns import heap, metrics
from kdns.config import BlockConfig, Config, from_text
from kdns.dns.message import Reply, Request
from kdns.hostport import HostPort, show
from kdns.plugins import bind, directives, health, prometheus, ready, reload
from kdns.plugins.base import BuildContext, Plugin, Readiness, Service
from kdns.plugins.tls import TlsConfig
from kdns.server import chain, recorder
from kdns.server.dispatch import Dispatcher, Observers, Route
from kdns.server.recorder import QueryRecorder
from kdns.transport.http import HttpEndpoints, HttpHandler
from kdns.transport.listener import AnyListener, Listener, ListenKey
from kdns.transport.listener import make as make_listener

log = logging.getLogger("kdns")


def server_label(addr: str, port: int, scheme: str = "dns") -> str:
    return f"{scheme}://" + show("" if addr in ("", "0.0.0.0", "::") else addr, port)


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """What a listener is: its transport, its certificate settings, and the certificate files'
    modification times (a reload after a certificate was replaced opens it anew)."""

    scheme: str = "dns"
    tls: TlsConfig | None = None
    stamp: tuple[int, ...] = ()


def listen_spec(block: BlockConfig) -> ListenSpec:
    entry = block.get("tls")
    if block.scheme == "dns" or entry is None:
        return ListenSpec(block.scheme)
    tls: TlsConfig = entry.config
    stamp = []
    for path in (tls.cert, tls.key, tls.ca):
        with contextlib.suppress(OSError):
            stamp.append(os.stat(path).st_mtime_ns if path else 0)
    return ListenSpec(block.scheme, tls, tuple(stamp))


async def _no_answer() -> bytes | None:
    return None


class _ShedCount:
    """kdns_udp_shed_total: queries the UDP listeners dropped unanswered because more full-path
    work was queued than they do in a few milliseconds (read from the listeners at scrape)."""

    def __init__(
        self, registry: CollectorRegistry, listeners: dict[ListenKey, AnyListener]
    ) -> None:
        self._listeners = listeners
        self._counter = metrics.counter(
            registry,
            "kdns_udp_shed_total",
            "UDP queries dropped unanswered because the queue of full-path work was full.",
        )
        self._reported = 0
        metrics.add_flusher(registry, self)

    def flush(self) -> None:
        total = sum(
            lst.udp.shed
            for lst in self._listeners.values()
            if isinstance(lst, Listener) and lst.udp is not None
        )
        if total > self._reported:
            self._counter.inc(total - self._reported)
            self._reported = total


@dataclass
class Instance:
    """Everything built from one Config: plugins per block and a dispatcher per listener.

    Its plugins' running parts (kdns.plugins.base.Service) have one owner: the configuration's
    TaskGroup, entered by `start()` and left by `stop()`.
    """

    config: Config
    registry: CollectorRegistry
    dispatchers: dict[ListenKey, Dispatcher] = field(default_factory=dict)
    plugins: list[Plugin] = field(default_factory=list)
    block_plugins: list[tuple[BlockConfig, dict[str, Plugin]]] = field(default_factory=list)
    block_labels: list[str] = field(default_factory=list)  # metrics `server` label per block
    listen: dict[ListenKey, ListenSpec] = field(default_factory=dict)
    serving: asyncio.Event = field(default_factory=asyncio.Event)  # set once it serves queries
    _leaving: asyncio.Event = field(default_factory=asyncio.Event)
    _life: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Enter every plugin's running part; return once all are in, or raise the first
        failure with none of them left running."""
        entered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The configuration lives in one task, held here, so its TaskGroup is entered and left
        # in the same task whichever task (startup, a reload) swaps configurations.
        self._life = asyncio.create_task(self._run(entered), name="configuration")
        try:
            await entered
        except BaseException:
            self._life.cancel()
            await asyncio.wait([self._life])
            raise

    async def _run(self, entered: asyncio.Future[None]) -> None:
        services = [p for p in self.plugins if isinstance(p, Service)]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as group:
                started = [loop.create_future() for _ in services]
                # Concurrently, so one slow source does not delay the others.
                for service, up in zip(services, started, strict=True):
                    group.create_task(self._hold(service, up), name=f"plugin {service.name}")
                await asyncio.gather(*started)
                entered.set_result(None)
        except Exception as exc:  # a plugin failed to start; the group stopped the others
            if not entered.done():
                entered.set_exception(_first(exc))

    async def _hold(self, service: Service, started: asyncio.Future[None]) -> None:
        try:
            async with service.running():
                started.set_result(None)
                await self._leaving.wait()
        except Exception as exc:
            if not started.done():
                raise  # it could not start: neither can the configuration
            # Reported, and only this plugin's work has ended: the others keep running.
            log.error("plugin %s failed: %s", service.name, exc, exc_info=exc)

    async def stop(self) -> None:
        for dispatcher in self.dispatchers.values():
            dispatcher.fastpath.flush()  # hits counted so far still reach the metrics
        self._leaving.set()
        if self._life is not None:
            await self._life


def _first(exc: BaseException) -> BaseException:
    """The error inside nested single-member exception groups (TaskGroup wraps what it raises)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _fatal_unset(msg: str) -> None:
    raise RuntimeError(f"fatal: {msg}")


def _unobserved(key: ListenKey, routes: list[Route]) -> Observers:
    return Observers()


def build(
    config: Config,
    registry: CollectorRegistry,
    fatal: Callable[[str], None] = _fatal_unset,
    observers: Callable[[ListenKey, list[Route]], Observers] = _unobserved,
) -> Instance:
    """The Instance for `config`; `observers` says who hears about each listener's queries."""
    inst = Instance(config, registry)
    routes: dict[ListenKey, list[Route]] = {}
    lookups: list[tuple[list[Dispatcher], ListenKey]] = []

    for block in config.blocks:
        addrs = bind.addresses([e.config for e in block.all("bind")])
        label = server_label(addrs[0] if len(addrs) == 1 else "", block.port, block.scheme)
        target: list[Dispatcher] = []  # filled once the listener's dispatcher exists

        async def lookup(request: Request, _target: list[Dispatcher] = target) -> Reply:
            # Re-enter the server (CoreDNS's upstream): ExternalName targets go to forward.
            return await _target[0].handle(request)

        built: dict[str, Plugin] = {}
        configs = {e.name: e.config for e in block.entries}
        ctx = BuildContext(
            block.info, label, registry, lookup, built, configs, addrs, fatal, inst.serving
        )
        ordered: list[Plugin] = []
        # Back to front, so a plugin can find the ones after it (autopath -> kubernetes).
        for entry in reversed(block.entries):
            spec = directives.spec(entry.name)
            if spec is None or spec.build is None:
                continue
            plugin = spec.build(entry.config, ctx)
            built[entry.name] = plugin
            ordered.append(plugin)
        ordered.reverse()
        inst.plugins.extend(ordered)
        inst.block_plugins.append((block, built))
        inst.block_labels.append(label)
        route = Route(block.zones, chain.build(ordered), label, chain.classes(ordered))
        listening = listen_spec(block)
        for addr in addrs:
            routes.setdefault((addr, block.port), []).append(route)
            # Blocks sharing an address share its transport (config checks); CoreDNS takes
            # the last block's certificate.
            if listening.tls is not None or (addr, block.port) not in inst.listen:
                inst.listen[(addr, block.port)] = listening
        lookups.append((target, (addrs[0], block.port)))

    for key, rs in routes.items():
        inst.dispatchers[key] = Dispatcher(rs, observers(key, rs))
        metrics.add_flusher(registry, inst.dispatchers[key].fastpath)
    for target, key in lookups:
        target.append(inst.dispatchers[key])
    return inst


def _settings(config: Config, name: str) -> list[Any]:
    return [e.config for b in config.blocks for e in b.all(name)]


class App:
    """Runs a Config until asked to stop; reloads swap Instances under the same listeners.

    Process-wide, as CoreDNS's are, and kept across reloads: the HTTP listeners, the query
    counters (kdns.server.recorder) and the running parts of `health`, `reload` and `prometheus`
    (their modules in kdns.plugins own them; this class only wires them to the configuration).
    """

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.config = config
        self.instance: Instance | None = None
        self.listeners: dict[ListenKey, AnyListener] = {}
        self.listen_specs: dict[ListenKey, ListenSpec] = {}
        self.started = asyncio.Event()
        self.stopping = asyncio.Event()
        self.lameduck = False
        self.exit_code = 0
        self.http = HttpEndpoints()
        self.recorder = QueryRecorder(self.registry)
        self.registry.register(self.recorder)
        self._shed = _ShedCount(self.registry, self.listeners)
        self.exposition = prometheus.Exposition(self.registry, self._prometheus_blocks)
        self.health = health.Health(self.registry, lambda: _settings(self.config, "health"))
        self.reloader = reload.Reloader(
            self.registry,
            lambda: (self.config.path, _settings(self.config, "reload")),
            self._load,
        )
        self._activating = asyncio.Lock()
        self._https_responses = metrics.counter(
            self.registry,
            "coredns_dns_https_responses_total",
            "Counter of DoH responses per server and http status code.",
            ("server", "status"),
        )

    def dispatcher(self, key: ListenKey) -> Dispatcher | None:
        return self.instance.dispatchers.get(key) if self.instance else None

    def _serve(
        self,
        key: ListenKey,
        data: bytes,
        proto: str,
        client: str,
        port: int,
        more: list[bytes] | None = None,
    ) -> Coroutine[Any, Any, bytes | None]:
        # Not a coroutine itself: the dispatcher's coroutine is handed on as it is, one frame
        # less on every query that takes the full path.
        dispatcher = self.dispatcher(key)
        if dispatcher is None:
            return _no_answer()
        return dispatcher.serve(data, proto, client, port, more)

    def _prometheus_blocks(self) -> Iterator[prometheus.EnabledBlock]:
        inst = self.instance
        if inst is None:
            return
        for (block, built), server in zip(inst.block_plugins, inst.block_labels, strict=True):
            if block.get("prometheus") is not None:
                yield server, block.zones, built

    async def _load(self, text: str, path: str) -> None:
        await self.activate(from_text(text, path))

    def _observers(self, config: Config) -> Callable[[ListenKey, list[Route]], Observers]:
        """The recorder's observers for the dispatchers of `config`: queries are counted for
        the blocks that enable prometheus, panics and drops for all."""
        counted = {
            (z, block.port)
            for block in config.blocks
            if block.get("prometheus") is not None
            for z in block.zones
        }
        return lambda key, routes: recorder.observers(self.recorder, routes, key[1], counted)

    def _listener(self, key: ListenKey, spec: ListenSpec) -> AnyListener:
        """A listener for `key`; a certificate that cannot be loaded raises (OSError, SSLError)
        and the configuration is not activated."""
        alpn = ("http/1.1",) if spec.scheme == "https" else ("dot",)
        tls = spec.tls.context(alpn) if spec.tls is not None else None
        label = server_label(key[0], key[1], spec.scheme)
        counter = self._https_responses

        def on_status(status: int) -> None:
            counter.labels(label, str(status)).inc()

        return make_listener(key, spec.scheme, functools.partial(self._serve, key), tls, on_status)

    def _http_routes(self, inst: Instance) -> dict[HostPort, dict[str, HttpHandler]]:
        """What each HTTP address serves for `inst`: /health, /metrics, and /ready over the
        ready-aware plugins of every block that names the address."""
        wanted: dict[HostPort, dict[str, HttpHandler]] = {}
        ready_members: dict[HostPort, tuple[list[Readiness], bool]] = {}
        for block, built in inst.block_plugins:
            for name, path, handler in (
                ("health", "/health", self.health.handle),
                ("prometheus", "/metrics", self.exposition.handle),
            ):
                entry = block.get(name)
                if entry is not None and getattr(entry.config, "unusable", None):
                    raise OSError(entry.config.unusable)  # a port only listening can refuse
                if entry is not None:
                    wanted.setdefault(entry.config.address, {})[path] = handler
            entry = block.get("ready")
            if entry is not None:
                members, _ = ready_members.get(entry.config.address, ([], False))
                members.extend(p for p in built.values() if isinstance(p, Readiness))
                ready_members[entry.config.address] = (members, entry.config.continuously)
        for address, (members, continuously) in ready_members.items():
            wanted.setdefault(address, {})["/ready"] = ready.handler(
                members, continuously, self._shutting_down
            )
        return wanted

    def _shutting_down(self) -> bool:
        return self.lameduck or self.stopping.is_set()

    async def activate(self, config: Config) -> None:
        """Build, start and swap in `config`. On failure the previous Instance keeps serving
        and nothing the new one opened stays open."""
        async with self._activating:
            inst = build(config, self.registry, self.fatal, self._observers(config))
            opened: list[ListenKey] = []
            await inst.start()
            try:
                wanted = set(inst.dispatchers)
                for key in sorted(wanted):
                    spec = inst.listen[key]
                    if key in self.listeners and self.listen_specs.get(key) == spec:
                        continue
                    if key in self.listeners:
                        # Another transport or certificate for this address: open it anew.
                        await self.listeners.pop(key).close()
                    listener = self._listener(key, spec)
                    await listener.open()
                    self.listeners[key] = listener
                    self.listen_specs[key] = spec
                    opened.append(key)
                await self.http.configure(self._http_routes(inst))
            except BaseException:
                for key in opened:
                    await self.listeners.pop(key).close()
                    self.listen_specs.pop(key, None)
                await inst.stop()
                raise
            old = self.instance
            self.instance = inst
            self.config = config
            for key, listener in self.listeners.items():
                dispatcher = inst.dispatchers.get(key)
                # The UDP drain loop calls this dispatcher's fast path directly (no lookups).
                if dispatcher is None:
                    listener.use(None)
                else:
                    listener.use(dispatcher.fastpath.answer, dispatcher.fastpath.asked_before)
            self.reloader.live(config.digest)
            self.health.live()
            inst.serving.set()
            for key in set(self.listeners) - wanted:
                listener = self.listeners.pop(key)
                self.listen_specs.pop(key, None)
                await listener.close()
            if old is not None:
                await old.stop()
            del old  # or the collection below could not free the replaced instance
            for _ in range(3):  # let the loop run the done-callbacks of the stopped tasks
                await asyncio.sleep(0)
            heap.collect_all()  # the old instance's objects go; the new ones leave the GC's reach

    async def run(self) -> None:
        """Serve until `stop()`: every process-wide task runs under this one root TaskGroup."""
        try:
            async with asyncio.TaskGroup() as tasks:
                keeper = tasks.create_task(heap.tend(), name="heap")
                async with self.health.running(), self.reloader.running():
                    await self.activate(self.config)
                    self.started.set()
                    await self.stopping.wait()
                    seconds = health.lameduck_seconds(_settings(self.config, "health"))
                    if seconds > 0 and not self.exit_code:
                        self.lameduck = True
                        await health.lameduck(seconds)
                keeper.cancel()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        for listener in self.listeners.values():
            listener.stop_accepting()
        for listener in self.listeners.values():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await listener.drain()
        for listener in list(self.listeners.values()):
            await listener.close()
        self.listeners.clear()
        await self.http.close()
        if self.instance is not None:
            await self.instance.stop()

    def stop(self) -> None:
        self.stopping.set()

    def fatal(self, message: str) -> None:
        """Log `message` at FATAL and stop at once (no lameduck) with exit code 1."""
        log.critical("%s", message)
        self.exit_code = 1
        self.stop()

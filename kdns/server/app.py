"""The application: a Corefile turned into listeners and plugin chains, and its lifecycle.

Listeners are keyed by (address, port) and outlive configurations: a reload builds a new
`Instance` (plugins, chains, dispatchers) from the new Corefile, starts it, and swaps it in under
the existing sockets, so unchanged listeners keep serving without a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from kdns import heap, metrics, plugins
from kdns.config import BlockConfig, Config
from kdns.dns.message import Reply, Request
from kdns.plugins.base import BuildContext, Plugin
from kdns.server import chain
from kdns.server.dispatch import Dispatcher, Route
from kdns.transport import tcp, udp

log = logging.getLogger("kdns")

ListenKey = tuple[str, int]


def listen_addresses(block: BlockConfig) -> tuple[str, ...]:
    entries = block.all("bind")
    if not entries:
        return ("",)  # every address
    addrs: list[str] = []
    for e in entries:
        for a in e.config.addresses:
            if a not in e.config.excluded and a not in addrs:
                addrs.append(a)
    return tuple(addrs)


def server_label(addr: str, port: int) -> str:
    host = "" if addr in ("", "0.0.0.0", "::") else (f"[{addr}]" if ":" in addr else addr)
    return f"dns://{host}:{port}"


@dataclass
class Instance:
    """Everything built from one Config: plugins per block and a dispatcher per listener."""

    config: Config
    registry: CollectorRegistry
    dispatchers: dict[ListenKey, Dispatcher] = field(default_factory=dict)
    plugins: list[Plugin] = field(default_factory=list)
    block_plugins: list[tuple[BlockConfig, dict[str, Plugin]]] = field(default_factory=list)
    block_labels: list[str] = field(default_factory=list)  # metrics `server` label per block

    def plugins_with(self, attr: str) -> list[Any]:
        return [p for p in self.plugins if hasattr(p, attr)]

    async def start(self) -> None:
        # Plugins start concurrently so one slow source does not delay the others.
        await asyncio.gather(*(p.start() for p in self.plugins_with("start")))

    def live(self) -> None:
        for p in self.plugins_with("live"):
            p.live()

    async def stop(self) -> None:
        for dispatcher in self.dispatchers.values():
            dispatcher.fastpath.flush()  # hits counted so far still reach the metrics
        for p in self.plugins_with("stop"):
            try:
                await p.stop()
            except Exception:
                log.exception("stopping plugin %s failed", p.name)


def _fatal_unset(msg: str) -> None:
    raise RuntimeError(f"fatal: {msg}")


def build(
    config: Config, registry: CollectorRegistry, fatal: Callable[[str], None] = _fatal_unset
) -> Instance:
    inst = Instance(config, registry)
    routes: dict[ListenKey, list[Route]] = {}
    lookups: list[tuple[list[Dispatcher], ListenKey]] = []

    for block in config.blocks:
        addrs = listen_addresses(block)
        label = server_label(addrs[0] if len(addrs) == 1 else "", block.port)
        target: list[Dispatcher] = []  # filled once the listener's dispatcher exists

        async def lookup(request: Request, _target: list[Dispatcher] = target) -> Reply:
            # Re-enter the server (CoreDNS's upstream): ExternalName targets go to forward.
            return await _target[0].handle(request)

        built: dict[str, Plugin] = {}
        configs = {e.name: e.config for e in block.entries}
        ctx = BuildContext(block.info, label, registry, lookup, built, configs, addrs, fatal)
        ordered: list[Plugin] = []
        # Back to front, so a plugin can find the ones after it (autopath -> kubernetes).
        for entry in reversed(block.entries):
            spec = plugins.spec(entry.name)
            if spec is None or spec.build is None:
                continue
            plugin = spec.build(entry.config, ctx)
            built[entry.name] = plugin
            ordered.append(plugin)
        ordered.reverse()
        inst.plugins.extend(ordered)
        inst.block_plugins.append((block, built))
        inst.block_labels.append(label)
        route = Route(block.zones, chain.build(ordered), label)
        for addr in addrs:
            routes.setdefault((addr, block.port), []).append(route)
        lookups.append((target, (addrs[0], block.port)))

    for key, rs in routes.items():
        inst.dispatchers[key] = Dispatcher(rs)
        metrics.add_flusher(registry, inst.dispatchers[key].fastpath)
    for target, key in lookups:
        target.append(inst.dispatchers[key])
    return inst


class Listener:
    """A UDP socket and a TCP server on one address and port, serving whatever dispatcher
    the current Instance has for them."""

    def __init__(self, key: ListenKey, resolve: Callable[[ListenKey], Dispatcher | None]) -> None:
        self.key = key
        self._resolve = resolve
        self.udp: udp.UdpServer | None = None
        self.tcp = tcp.TcpListener(self._serve)

    async def _serve(self, data: bytes, proto: str, client: str, port: int) -> bytes | None:
        dispatcher = self._resolve(self.key)
        if dispatcher is None:
            return None
        return await dispatcher.serve(data, proto, client, port)

    def use(self, dispatcher: Dispatcher | None) -> None:
        """Point the UDP drain loop straight at this dispatcher's fast path (no lookups per
        query); called whenever a new Instance goes live."""
        if self.udp is not None:
            self.udp.fast = dispatcher.fastpath.answer if dispatcher is not None else None

    async def open(self) -> None:
        host, port = self.key
        if host == "":
            host = "::" if socket.has_ipv6 else "0.0.0.0"
            try:
                self.udp = udp.listen(host, port, self._serve)
            except OSError:
                host = "0.0.0.0"
                self.udp = udp.listen(host, port, self._serve)
        else:
            self.udp = udp.listen(host, port, self._serve)
        try:
            await self.tcp.start(None if self.key[0] == "" else host, port)
        except BaseException:
            self.udp.close()
            raise

    def stop_accepting(self) -> None:
        """Answer what was accepted, take nothing new (UDP drops, the TCP socket closes)."""
        if self.udp is not None:
            self.udp.accepting = False
        if self.tcp.server is not None:
            self.tcp.server.close()

    async def drain(self) -> None:
        if self.udp is not None:
            await self.udp.drain()
        await self.tcp.drain()

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        await self.tcp.close()


Hook = Callable[["App", Instance], Awaitable[None]]


class App:
    """Runs a Config until asked to stop; reloads swap Instances under the same listeners."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        from kdns.server.ops import Operations

        self.registry = registry or CollectorRegistry()
        self.config = config
        self.instance: Instance | None = None
        self.listeners: dict[ListenKey, Listener] = {}
        self.started = asyncio.Event()
        self.stopping = asyncio.Event()
        self.lameduck = False
        self.exit_code = 0
        self.on_instance: list[Hook] = []  # called when an Instance goes live
        self.ops = Operations(self)
        self._activating = asyncio.Lock()

    def dispatcher(self, key: ListenKey) -> Dispatcher | None:
        return self.instance.dispatchers.get(key) if self.instance else None

    async def activate(self, config: Config) -> None:
        """Build, start and swap in `config`. On failure the previous Instance keeps serving
        and nothing the new one opened stays open."""
        async with self._activating:
            inst = build(config, self.registry, self.fatal)
            self.ops.attach(inst)
            opened: list[ListenKey] = []
            await inst.start()
            try:
                wanted = set(inst.dispatchers)
                for key in sorted(wanted - set(self.listeners)):
                    listener = Listener(key, self.dispatcher)
                    await listener.open()
                    self.listeners[key] = listener
                    opened.append(key)
                await self.ops.prepare(inst)
            except BaseException:
                for key in opened:
                    await self.listeners.pop(key).close()
                await inst.stop()
                raise
            old = self.instance
            self.instance = inst
            self.config = config
            for key, listener in self.listeners.items():
                listener.use(inst.dispatchers.get(key))
            self.ops.live(inst)
            inst.live()
            for hook in self.on_instance:
                await hook(self, inst)
            for key in set(self.listeners) - wanted:
                listener = self.listeners.pop(key)
                await listener.close()
            if old is not None:
                await old.stop()
            del old  # or the collection below could not free the replaced instance
            for _ in range(3):  # let the loop run the done-callbacks of the stopped tasks
                await asyncio.sleep(0)
            heap.settle()  # the old instance's objects go; the new ones leave the GC's reach

    async def run(self) -> None:
        keeper = asyncio.create_task(heap.keep(), name="heap")
        try:
            await self.activate(self.config)
            self.started.set()
            await self.stopping.wait()
            await self._lameduck()
        finally:
            keeper.cancel()
            await self.shutdown()

    async def _lameduck(self) -> None:
        from kdns.server.ops import lameduck_of

        duration = lameduck_of(self.config)
        if duration <= 0 or self.exit_code:
            return
        # Keep answering while clients and kube-proxy notice we are going; /ready says 503.
        self.lameduck = True
        log.info("plugin/health: Going into lameduck mode for %gs", duration)
        await asyncio.sleep(duration)

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
        await self.ops.close()
        if self.instance is not None:
            await self.instance.stop()

    def stop(self) -> None:
        self.stopping.set()

    def fatal(self, message: str) -> None:
        """Log `message` at FATAL and stop at once (no lameduck) with exit code 1."""
        log.critical("%s", message)
        self.exit_code = 1
        self.stop()

"""`file DBFILE [ZONES...] { reload DURATION; reload_by_mtime; fallthrough [ZONES] }`: serve
zones from RFC 1035 zone files, as CoreDNS's `file` plugin.

DBFILE is read with each of ZONES (default: the block's) as its origin when the configuration is
read, so a syntax error stops `kdns check` and startup with the zone file's `file:line`. A
relative DBFILE is taken from the Corefile's directory, like `hosts` files (kdns has no `root`
directive). A missing file is an error only with `reload 0`; otherwise the zone answers SERVFAIL
until the file appears.

Answers are authoritative and follow kdns.dns.zone (CoreDNS's lookup): records, CNAME chains
inside the zone (a target outside it is resolved through the server), referrals for delegated
names, wildcards, NXDOMAIN/NODATA with the SOA. `fallthrough [ZONES]` passes would-be NXDOMAIN
answers on to the next plugin. AXFR/IXFR queries that reach this plugin are REFUSED: transfers
are the `transfer` plugin's (this plugin is a Transferer).

Every `reload` (default 1m, 0 turns it off) the file is read again if it changed on disk, and its
zone replaces the served one when the SOA serial differs, as CoreDNS does: an edit that keeps
the serial is not picked up (`reload_by_mtime` takes any change of the file instead). A file
that no longer parses is logged with its `file:line` and the last good zone keeps serving.
Answers may be re-served from the fast path until a reload replaces the zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kdns import metrics
from kdns.corefile import CorefileError, Directive
from kdns.dns import names, zonefile
from kdns.dns.message import NOERROR, NXDOMAIN, REFUSED, SERVFAIL, Reply, Request
from kdns.dns.records import RR
from kdns.dns.transfer import TYPES as TRANSFER_TYPES
from kdns.dns.zone import Result, Zone
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec, Service, background

log = logging.getLogger("kdns.file")

DEFAULT_RELOAD = 60.0
PROPERTIES = ("reload", "reload_by_mtime", "fallthrough", "upstream")

# (device, inode, size, mtime): the file is read again only when one of them changed.
Stamp = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class ZoneSource:
    """One zone of a `file` line: its origin, the file, and what was read at setup."""

    origin: str
    path: str
    reload: float
    by_mtime: bool
    zone: Zone | None  # None: the file could not be opened (retried every reload)
    stamp: Stamp | None


@dataclass(frozen=True, slots=True)
class FileConfig:
    sources: tuple[ZoneSource, ...]
    fallthrough: tuple[str, ...] | None = None  # () = every zone


def parse(d: Directive, block: BlockInfo) -> FileConfig:
    if not d.args:
        raise d.error("wrong number of arguments for file: usage: file DBFILE [ZONES...]")
    path = str(Path(d.file).parent / d.args[0].text)
    origins = parsing.zones(d.args[1:], block.zones)
    reload, by_mtime = DEFAULT_RELOAD, False
    fallthrough: tuple[str, ...] | None = None
    for sub in d.block or ():
        if sub.name == "reload":
            parsing.no_block(sub)
            if not sub.args:
                raise sub.error("file: reload duration value is expected")
            reload = parsing.duration(sub.args[0])
        elif sub.name == "reload_by_mtime":
            parsing.no_args(sub)
            parsing.no_block(sub)
            by_mtime = True
        elif sub.name == "fallthrough":
            parsing.no_block(sub)
            fallthrough = parsing.zones(sub.args, ())
        elif sub.name == "upstream":
            parsing.no_block(sub)
            parsing.no_effect(log, "file: upstream", "CNAME targets always go through the server")
        else:
            raise parsing.unknown_property("file", sub, PROPERTIES)
    try:
        stamp, text = read(path)
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        if reload == 0:
            raise d.args[0].error(f"file: cannot read {d.args[0].text!r}: {problem}") from None
        log.warning("plugin/file: cannot read %s: %s; trying again in %gs", path, problem, reload)
        stamp, text = None, None
    sources = []
    for origin in origins:
        zone = None if text is None else _checked(text, origin, path)
        sources.append(ZoneSource(origin, path, reload, by_mtime, zone, stamp))
    return FileConfig(tuple(sources), fallthrough)


def _checked(text: str, origin: str, path: str) -> Zone:
    try:
        return load(text, origin, path)
    except zonefile.ZoneFileError as exc:
        raise CorefileError(exc.file, exc.line, f"file: {exc.message}") from None


def read(path: str) -> tuple[Stamp, str]:
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), f.read().decode("utf-8")


def load(text: str, origin: str, path: str) -> Zone:
    """The zone in `text`; `$INCLUDE`d files are read relative to `path`'s directory."""

    def include(name: str) -> tuple[str, str]:
        full = str(Path(path).parent / name)
        try:
            return full, read(full)[1]
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"$INCLUDE {name}: {getattr(exc, 'strerror', exc)}") from None

    return Zone.of(origin, zonefile.parse(text, origin, path, include))


def merge(first: FileConfig, later: FileConfig) -> FileConfig:
    """Several `file` lines in a block: one plugin serving all their zones; the last
    `fallthrough` given applies to all of them, as in CoreDNS."""
    fallthrough = later.fallthrough if later.fallthrough is not None else first.fallthrough
    return FileConfig(first.sources + later.sources, fallthrough)


class FilePlugin(Service):
    name = "file"

    def __init__(self, config: FileConfig, ctx: BuildContext) -> None:
        self.config = config
        self.zones: dict[str, Zone | None] = {s.origin: s.zone for s in config.sources}
        self._origins = tuple(self.zones)
        self._stamps: dict[str, Stamp | None] = {s.origin: s.stamp for s in config.sources}
        self.generation = 0  # bumped on each new zone: what memoised answers depend on
        self._lookup = ctx.lookup
        self._entries = metrics.gauge(
            ctx.registry,
            "coredns_file_entries",
            "The combined number of entries in zone file and Corefile.",
            ["dns_name"],
        )
        for origin, zone in self.zones.items():
            if zone is not None:
                self._entries.labels(origin).set(zone.count)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Each zone whose `reload` is not 0 is followed on disk while the plugin serves."""
        watched = [s for s in self.config.sources if s.reload > 0]
        if not watched:
            yield
            return
        async with background(lambda: self._watch(watched), "file reload"):
            yield

    async def _watch(self, sources: list[ZoneSource]) -> None:
        async with asyncio.TaskGroup() as tasks:
            for source in sources:
                tasks.create_task(self._every(source), name=f"file reload {source.path}")

    async def _every(self, source: ZoneSource) -> None:
        while True:
            await asyncio.sleep(source.reload)
            try:
                await self.refresh(source)
            except Exception:  # the next round tries again; the zone read before still serves
                log.exception("plugin/file: reloading %s failed", source.path)

    async def refresh(self, source: ZoneSource) -> bool:
        """Read the zone's file again if it changed; True if a new zone now serves."""
        origin = source.origin
        try:
            stamp, text = await asyncio.to_thread(read, source.path)
        except (OSError, UnicodeDecodeError) as exc:
            log.error("plugin/file: failed to open zone %s in %s: %s", origin, source.path, exc)
            return False
        if stamp == self._stamps[origin]:
            return False
        self._stamps[origin] = stamp  # a file that fails is reported once, not every round
        try:
            zone = await asyncio.to_thread(load, text, origin, source.path)
        except zonefile.ZoneFileError as exc:
            log.error(
                "plugin/file: parsing zone %s: %s; still serving the last good one", origin, exc
            )
            return False
        current = self.zones[origin]
        if current is not None and not source.by_mtime and zone.serial == current.serial:
            return False  # CoreDNS reloads on a new SOA serial only
        self.zones[origin] = zone
        self.generation += 1
        self._entries.labels(origin).set(zone.count)
        log.info(
            "plugin/file: successfully reloaded zone %s in %s with %d SOA serial",
            origin,
            source.path,
            zone.serial,
        )
        return True

    def transfer(self, zone: str) -> Sequence[RR] | None:
        """Transferer: the records of `zone` when it is one of this plugin's zones and loaded."""
        found = self.zones.get(zone)
        return None if found is None else found.transfer()

    def _unchanged(self) -> Callable[[], bool]:
        seen = self.generation
        return lambda: self.generation == seen

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        origin = names.longest_zone(request.name, self._origins)
        if origin is None:
            return await call_next(request)
        if request.qtype in TRANSFER_TYPES:
            return Reply(rcode=REFUSED, plugin=self.name)  # no `transfer` allowed it
        zone = self.zones[origin]
        if zone is None:
            return Reply(rcode=SERVFAIL, plugin=self.name, error=f"file: zone {origin} not loaded")
        found = zone.lookup(request.name, request.qtype)
        if found.result is Result.NXDOMAIN and parsing.falls_through(
            self.config.fallthrough, request.name
        ):
            return await call_next(request)
        reply = Reply(
            NXDOMAIN if found.result is Result.NXDOMAIN else NOERROR,
            found.answer,
            found.authority,
            found.additional,
            aa=found.result is not Result.DELEGATION,
            plugin=self.name,
        )
        if found.chase is not None:
            memo.deny()  # the answer now holds data from elsewhere, with its own lifetime
            return await self._chase(request, reply, found.chase)
        note = memo.get()
        if note is not None:
            note.allow(self._unchanged())
        return reply

    async def _chase(self, request: Request, reply: Reply, target: str) -> Reply:
        """Resolve a CNAME target outside the zone through the server (CoreDNS's upstream)."""
        try:
            upstream = await self._lookup(request.with_question(target))
        except Exception as exc:  # the CNAME alone is still a correct answer
            log.debug("plugin/file: looking up %s failed: %s", target, exc)
            return reply
        return replace(reply, answer=reply.answer + upstream.answer)


def build(config: FileConfig, ctx: BuildContext) -> FilePlugin:
    return FilePlugin(config, ctx)


SPEC = PluginSpec("file", parse, build, repeatable=True, merge=merge)

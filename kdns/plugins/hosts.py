"""`hosts [FILE [ZONES...]] { ENTRIES; ttl; no_reverse; reload; fallthrough; ... }`: answer from
an /etc/hosts-style file and entries written in the Corefile, as CoreDNS's `hosts` plugin.

FILE (default /etc/hosts; relative to the Corefile's directory) is read before serving and again
every `reload` (default 5s, 0 turns it off) when its size, time or identity changed, so the
`NodeHosts` ConfigMap k3s mounts is followed when it is edited. A missing or unreadable file is
not fatal: the inline entries and whatever was read before keep serving, and the problem is
logged once. Lines that are not entries are skipped with a `file:line` warning.

Answers, per CoreDNS: A and AAAA for names in ZONES (default: the block's), PTR for the
addresses (in any reverse zone the block serves, unless `no_reverse`), all with `ttl` (default
3600) and AA. A name the data knows answers NODATA for other types (or, with
`fallthrough_unsupported`, passes them on); a PTR query for an unknown address always passes to
the next plugin; an unknown name passes on under `fallthrough [ZONES]` and is otherwise a
SERVFAIL, since a hosts file has no SOA to deny a name with. Answers may be re-served from the
fast path until the data changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from kdns import metrics
from kdns.corefile import CorefileError, Directive
from kdns.dns import hostsfile, names
from kdns.dns.hostsfile import Parsed, Table
from kdns.dns.message import NOERROR, SERVFAIL, Reply, Request
from kdns.dns.records import AAAA, PTR, RR, A
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec, Service, background

log = logging.getLogger("kdns.hosts")

DEFAULT_PATH = "/etc/hosts"
DEFAULT_TTL = 3600
DEFAULT_RELOAD = 5.0
MAX_TTL = 65535
PROPERTIES = ("ttl", "no_reverse", "reload", "fallthrough", "fallthrough_unsupported")
USAGE = "hosts [FILE [ZONES...]] { [INLINE] ttl SECONDS; no_reverse; reload DURATION; fallthrough }"

# (device, inode, size, mtime): a change to any of them means the file must be read again.
# CoreDNS looks at size and mtime; the identity also catches a ConfigMap's symlink swap that
# keeps both.
Stamp = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class HostsConfig:
    path: str
    zones: tuple[str, ...]
    inline: Parsed = hostsfile.EMPTY
    ttl: int = DEFAULT_TTL
    reverse: bool = True
    reload: float = DEFAULT_RELOAD
    fallthrough: tuple[str, ...] | None = None  # () = every zone
    fallthrough_unsupported: bool = False


def parse(d: Directive, block: BlockInfo) -> HostsConfig:
    args = d.args
    path = DEFAULT_PATH
    if args:
        path = str(Path(d.file).parent / args[0].text)
        _check_access(args[0].text, path, d)
    zones = parsing.zones(args[1:], block.zones)
    ttl, reverse, reload = DEFAULT_TTL, True, DEFAULT_RELOAD
    inline: list[tuple[int, str]] = []
    fallthrough: tuple[str, ...] | None = None
    unsupported = False
    for sub in d.block or ():
        if sub.name == "fallthrough":
            parsing.no_block(sub)
            fallthrough = parsing.zones(sub.args, ())
        elif sub.name == "no_reverse":
            parsing.no_args(sub)
            parsing.no_block(sub)
            reverse = False
        elif sub.name == "ttl":
            if not sub.args:
                raise sub.error("ttl needs a time in seconds")
            parsing.arg_count(sub, 1, 1, "ttl SECONDS")
            ttl = parsing.integer(sub.args[0], 1, MAX_TTL, "ttl")
        elif sub.name == "reload":
            parsing.arg_count(sub, 1, 1, "reload DURATION (0 to disable)")
            reload = parsing.duration(sub.args[0])
        elif sub.name == "fallthrough_unsupported":
            parsing.no_args(sub)
            unsupported = True
        elif fallthrough is None:
            # Before `fallthrough`, any other line is an entry, as CoreDNS reads the block.
            parsing.no_block(sub)
            inline.append((sub.line, " ".join([sub.name, *(t.text for t in sub.args)])))
        else:
            raise parsing.unknown_property("hosts", sub, PROPERTIES)
    if unsupported and fallthrough is None:
        raise d.error("hosts: fallthrough_unsupported requires fallthrough")
    parsed = hostsfile.parse(inline, zones, reverse=reverse)
    if parsed.skipped:
        bad = parsed.skipped[0]
        raise CorefileError(
            d.file,
            bad.line,
            f"hosts: {bad.text!r} is neither a property ({', '.join(PROPERTIES)}) nor a hosts "
            f"entry: {bad.why}",
        )
    return HostsConfig(path, zones, parsed, ttl, reverse, reload, fallthrough, unsupported)


def _check_access(shown: str, path: str, d: Directive) -> None:
    """As CoreDNS's setup: a file that does not exist (yet) is fine, one that cannot even be
    looked at is a configuration error."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise d.args[0].error(f"unable to access hosts file {shown!r}: {exc.strerror}") from None


class HostsPlugin(Service):
    name = "hosts"

    def __init__(self, config: HostsConfig, ctx: BuildContext) -> None:
        self.config = config
        self.table = Table.of(config.inline)  # inline entries serve even without the file
        self.generation = 0  # bumped on each new table: what memoised answers depend on
        self._file: Parsed = hostsfile.EMPTY
        self._stamp: Stamp | None = None
        self._problem: str | None = None
        self._entries = metrics.gauge(
            ctx.registry,
            "coredns_hosts_entries",
            "The combined number of entries in hosts and Corefile.",
        )
        self._reloaded = metrics.gauge(
            ctx.registry,
            "coredns_hosts_reload_timestamp_seconds",
            "The timestamp of the last reload of hosts file.",
        )
        self._entries.set(self.table.entries)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The file is read once before serving (CoreDNS's OnStartup), then followed every
        `reload` interval while the context is open."""
        await self.refresh()
        if self.config.reload <= 0:
            yield
            return
        async with background(self._watch, f"hosts {self.config.path}"):
            yield

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload)
            try:
                await self.refresh()
            except Exception:  # the next round tries again; the data read before still serves
                log.exception("plugin/hosts: reading %s failed", self.config.path)

    async def refresh(self) -> bool:
        """Read the file if it changed since the last read; True if new data now serves."""
        try:
            loaded = await asyncio.to_thread(_load, self.config, self._stamp)
        except (OSError, UnicodeDecodeError) as exc:
            self._report(exc)
            return False
        if self._problem is not None:
            log.info("plugin/hosts: %s is readable again", self.config.path)
            self._problem = None
        if loaded is None:
            return False
        self._stamp, self._file, mtime = loaded
        for bad in self._file.skipped[:1]:
            more = len(self._file.skipped) - 1
            log.warning(
                "plugin/hosts: %s:%d: skipped %r: %s%s",
                self.config.path,
                bad.line,
                bad.text,
                bad.why,
                f" (and {more} more lines)" if more else "",
            )
        self.table = Table.of(self._file, self.config.inline)
        self.generation += 1
        self._entries.set(self.table.entries)
        self._reloaded.set(mtime)
        log.debug("plugin/hosts: parsed %s into %d entries", self.config.path, len(self._file))
        return True

    def _report(self, exc: Exception) -> None:
        problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        if problem != self._problem:  # once per problem, not every reload interval
            self._problem = problem
            log.warning(
                "plugin/hosts: cannot read %s: %s; serving %s",
                self.config.path,
                problem,
                "the entries read before" if self._stamp is not None else "the inline entries",
            )

    def _unchanged(self) -> Callable[[], bool]:
        seen = self.generation
        return lambda: self.generation == seen

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        name = request.name
        qtype = request.qtype
        if qtype != PTR and names.longest_zone(name, self.config.zones) is None:
            return await call_next(request)
        table = self.table
        replay = memo.get()
        if replay is not None:
            # Whoever answers, they answer because of what the hosts data says of this name.
            replay.checks.append(self._unchanged())
        ttl = self.config.ttl
        if qtype == PTR:
            hosts = table.hosts_of(name)
            if not hosts:
                return await call_next(request)  # whatever fallthrough says, as CoreDNS
            answer = tuple(RR(request.qname, PTR, ttl, names.to_wire(h)) for h in hosts)
            return self._answer(answer, replay)
        owner = table.owner(name)
        if owner is None:
            if parsing.falls_through(self.config.fallthrough, name):
                return await call_next(request)
            return Reply(rcode=SERVFAIL, plugin=self.name)  # no SOA to deny the name with
        if qtype in (A, AAAA):
            ips = table.addresses(owner, 4 if qtype == A else 6)
            return self._answer(tuple(RR(request.qname, qtype, ttl, ip) for ip in ips), replay)
        if self.config.fallthrough_unsupported and parsing.falls_through(
            self.config.fallthrough, name
        ):
            return await call_next(request)
        return self._answer((), replay)  # NODATA: the name exists, with addresses only

    def _answer(self, answer: tuple[RR, ...], replay: memo.Memo | None) -> Reply:
        if replay is not None:
            replay.allow()
        return Reply(NOERROR, answer, aa=True, plugin=self.name)


def _load(config: HostsConfig, known: Stamp | None) -> tuple[Stamp, Parsed, float] | None:
    """The file's entries, or None when it is the one read before (runs in a thread)."""
    with open(config.path, "rb") as f:
        st = os.fstat(f.fileno())
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == known:
            return None
        text = f.read().decode("utf-8")
    return stamp, hostsfile.parse_text(text, config.zones, reverse=config.reverse), st.st_mtime


def build(config: HostsConfig, ctx: BuildContext) -> HostsPlugin:
    return HostsPlugin(config, ctx)


SPEC = PluginSpec("hosts", parse, build)

"""Where `kdns diagnose` gets each query's reply: a live DNS server, or a Corefile offline.

Live: each step's queries go out together on one new UDP socket (A first), as getaddrinfo sends
them; a truncated reply is re-asked over TCP for glibc and kept as it is for musl (1.2.3 never
retries over TCP). Offline: names in a `kubernetes` zone are answered from its snapshot with the
server's own lookup code; anything else would be forwarded upstream and is reported as unknown,
never guessed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from kdns import hostport
from kdns.cluster import answer as cluster_answer
from kdns.cluster import multicluster
from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.options import Options
from kdns.cluster.search import GLIBC, Outcome
from kdns.config import BlockConfig, Config
from kdns.dns import names, wire
from kdns.dns import records as rr
from kdns.dns.message import NXDOMAIN
from kdns.sources import static
from kdns.transport import client

UPSTREAM_UNKNOWN = "would be forwarded upstream (unknown offline)"


def _records(answer: Sequence[rr.RR]) -> tuple[tuple[int, str], ...]:
    return tuple((r.rtype, rr.rdata_text(r)) for r in answer)


class SourceError(Exception):
    """The source cannot answer at all (no snapshot, unreadable file)."""


@dataclass(frozen=True, slots=True)
class _Zone:
    block: BlockConfig
    zones: tuple[str, ...]  # the kubernetes zones of the block, or () when it has none
    options: Options | None
    fallthrough: tuple[str, ...] | None
    index: ClusterIndex | None


class Offline:
    """Answers from a Corefile's kubernetes snapshot, without sockets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._blocks: list[_Zone] = []
        loaded: dict[str, ClusterIndex] = {}
        for block in config.blocks:
            entry = block.get("kubernetes")
            if entry is None:
                self._blocks.append(_Zone(block, (), None, None, None))
                continue
            kcfg = entry.config
            if not kcfg.snapshot:
                raise SourceError(
                    f"{entry.directive.file}:{entry.directive.line}: the kubernetes block reads "
                    "a live API server; offline mode needs `snapshot FILE` (or use --server)"
                )
            if kcfg.snapshot not in loaded:
                try:
                    snap = static.load(kcfg.snapshot)
                except static.SnapshotError as exc:
                    raise SourceError(str(exc)) from None
                builder = IndexBuilder()
                snap.load_into(builder)
                loaded[kcfg.snapshot] = builder.publish()
            zones = tuple(kcfg.options.zones)
            self._blocks.append(
                _Zone(block, zones, kcfg.options, kcfg.fallthrough, loaded[kcfg.snapshot])
            )

    @property
    def cluster_zones(self) -> tuple[str, ...]:
        out: list[str] = []
        for b in self._blocks:
            out.extend(z for z in b.zones if not z.endswith(cluster_answer.REVERSE_ZONES))
        return tuple(out)

    def namespace_exists(self, namespace: str) -> bool:
        """Whether any kubernetes block's snapshot has the namespace."""
        return any(
            b.index is not None and b.index.namespace_exists(namespace) for b in self._blocks
        )

    @property
    def autopath(self) -> bool:
        return any(b.block.get("autopath") is not None for b in self._blocks)

    def _block_for(self, name: str) -> _Zone | None:
        best: tuple[int, _Zone] | None = None
        for b in self._blocks:
            zone = names.longest_zone(name, b.block.zones)
            if zone is not None and (best is None or len(zone) > best[0]):
                best = (len(zone), b)
        return best[1] if best else None

    def ask(self, qname: str, qtype: int) -> Outcome:
        name = names.normalize(qname)
        b = self._block_for(name)
        if b is None:
            return Outcome(None, unknown=True, note="no server block serves this name")
        zone = names.longest_zone(name, b.zones)
        if b.options is None or b.index is None or zone is None:
            return Outcome(None, unknown=True, note=UPSTREAM_UNKNOWN)
        if zone in b.options.multicluster:
            result = multicluster.lookup(b.index, b.options, qname, qtype)
        else:
            result = cluster_answer.lookup(b.index, b.options, qname, qtype)
        reply = result.reply
        falls = b.fallthrough is not None and (
            not b.fallthrough or names.longest_zone(name, b.fallthrough) is not None
        )
        if reply.rcode == NXDOMAIN and falls:
            return Outcome(None, unknown=True, note="falls through to the next plugin")
        if result.chase is not None and qtype in (rr.A, rr.AAAA):
            return Outcome(
                reply.rcode,
                _records(reply.answer),
                unknown=True,
                note=f"CNAME to {result.chase}, whose address is resolved upstream "
                "(unknown offline)",
            )
        return Outcome(reply.rcode, _records(reply.answer), tc=reply.tc)


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """`HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address."""
    try:
        host, port_text = hostport.split_optional(text)
    except ValueError:
        raise ValueError(f"invalid server {text!r}") from None
    port = default_port
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()):
            bracketed = text.startswith("[")
            raise ValueError(
                f"invalid server {text!r}" if bracketed else f"invalid port in {text!r}"
            )
        port = int(port_text)
    if not host:
        raise ValueError(f"--server needs HOST[:PORT], got {text!r}")
    if not 0 < port < 65536:
        raise ValueError(f"invalid port in {text!r}")
    return host, port


def resolve_server(text: str) -> tuple[str, int]:
    """`--server` as an address to send to: a name is resolved once, here (ValueError if not)."""
    host, port = parse_server(text)
    if all(label.isdigit() for label in host.split(".")):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"--server {text}: {host} is not a valid IPv4 address") from None
    try:
        return client.resolve(host, port), port
    except ValueError as exc:
        raise ValueError(
            f"--server {text}: {host!r} is not an IP address and does not resolve ({exc})"
        ) from None


class Live:
    """Sends each step's queries to a DNS server, as the chosen library would.

    Every failure becomes an Outcome without an rcode that says what the socket reported, so the
    walk goes on (or stops) as the library would; nothing here raises for a bad server.
    """

    def __init__(
        self, host: str, port: int, resolver: str, timeout: float = 2.0, tcp: bool = False
    ) -> None:
        self.host = host
        self.port = port
        self.resolver = resolver
        self.timeout = timeout
        self.tcp = tcp  # everything over TCP: kubectl port-forward carries nothing else

    def _failed(self, exc: BaseException, tcp: bool) -> Outcome:
        if isinstance(exc, TimeoutError):
            return Outcome(None, note=f"no reply within {self.timeout:g} s")
        if isinstance(exc, ConnectionRefusedError):
            why = "TCP connection refused" if tcp else "ICMP port unreachable"
            return Outcome(None, note=why, failure="REFUSED", unreachable=True)
        if isinstance(exc, ConnectionResetError):
            return Outcome(None, note="connection reset by the server", failure="RESET")
        if isinstance(exc, asyncio.IncompleteReadError):
            return Outcome(None, note="connection closed before a whole reply", failure="CLOSED")
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        # Over UDP, glibc reports any failure that is not a timeout as ECONNREFUSED.
        return Outcome(None, note=text, failure="ERROR", unreachable=not tcp)

    async def ask_step(
        self, qname: str, qtypes: Sequence[int]
    ) -> tuple[list[Outcome], list[float | None]]:
        if self.tcp:
            return await self._all_tcp(qname, qtypes)
        ids = random.sample(range(1, 65536), len(qtypes))
        # No EDNS: glibc and musl send plain 512-byte queries.
        queries = [
            (mid, wire.encode_query(qname, qtype, mid, edns_size=None))
            for mid, qtype in zip(ids, qtypes, strict=True)
        ]
        arrivals, sent = await client.udp_together(self.host, self.port, queries, self.timeout)
        answers: list[Outcome] = []
        took: list[float | None] = []
        for i, (got, qtype) in enumerate(zip(arrivals, qtypes, strict=True)):
            if isinstance(got, Exception):
                answers.append(self._failed(got, tcp=False))
                took.append(None)
                continue
            data, at = got
            ans = self._decode(data, qname, qtype)
            elapsed: float | None = at - sent[i]
            if ans.tc and self.resolver == GLIBC:
                start = time.perf_counter()
                ans = await self._tcp(qname, qtype, retry=True)
                elapsed = (elapsed or 0.0) + time.perf_counter() - start
            answers.append(ans)
            took.append(elapsed)
        return answers, took

    async def _all_tcp(
        self, qname: str, qtypes: Sequence[int]
    ) -> tuple[list[Outcome], list[float | None]]:
        answers: list[Outcome] = []
        took: list[float | None] = []
        for qtype in qtypes:
            start = time.perf_counter()
            ans = await self._tcp(qname, qtype)
            answers.append(ans)
            took.append(None if ans.rcode is None else time.perf_counter() - start)
        return answers, took

    def _decode(self, data: bytes, qname: str, qtype: int) -> Outcome:
        try:
            msg = wire.decode_message(data)
        except wire.WireError as exc:
            return Outcome(None, note=f"malformed reply: {exc}")
        question = msg.question[0] if msg.question else None
        if question is None or names.normalize(question[0]) != names.normalize(qname):
            return Outcome(None, note="reply for another question (ignored)")
        return Outcome(msg.rcode, _records(msg.answer), tc=msg.tc)

    async def _tcp(self, qname: str, qtype: int, retry: bool = False) -> Outcome:
        mid = random.randrange(1, 65536)
        query = wire.encode_query(qname, qtype, mid, edns_size=None)
        try:
            data = await client.tcp_once(self.host, self.port, query, self.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            failed = self._failed(exc, tcp=True)
            if retry:
                failed = replace(failed, note=f"TCP retry (reply was truncated): {failed.note}")
            return failed
        ans = self._decode(data, qname, qtype)
        if retry and not ans.note:
            ans = replace(ans, note="after TCP retry (reply was truncated)")
        return ans

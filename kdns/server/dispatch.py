"""One query, start to end: decode, route to a server block by zone, run its chain, encode.

This is the one place where an unexpected exception becomes SERVFAIL (logged once per distinct
message, counted), so one bad query can never take the server or its other queries down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kdns.dns import names, transfer, wire
from kdns.dns.message import DROP, REFUSED, SERVFAIL, Reply, Request
from kdns.dns.records import CLASS_IN
from kdns.plugins import memo
from kdns.plugins.base import Handler
from kdns.server.fastpath import FastPath

log = logging.getLogger("kdns.server")

# The zone reported for a query that never entered a plugin chain (CoreDNS's vars.Dropped).
DROPPED = "dropped"

# Called after every answered query: (request, reply, zone, seconds, wire size of the reply).
Observer = Callable[[Request, Reply, str, float, int], None]
# Called when the fast path keeps a reply, with (request, reply, zone, credit) and the reply's
# size; returns what each hit of those bytes calls, or None.
Stored = Callable[[object, int], Callable[[int], None] | None]


@dataclass(frozen=True, slots=True)
class Observers:
    """Who hears about a dispatcher's queries, fixed when it is built (the metrics recorder)."""

    answered: tuple[Observer, ...] = ()
    panicked: tuple[Callable[[], None], ...] = ()  # a plugin raised: SERVFAIL
    dropped: tuple[Callable[[str], None], ...] = ()  # (proto) no reply sent: undecodable or
    # an error reply over the rate limit
    fast_stored: tuple[Stored, ...] = ()


ERROR_REPLIES_PER_SECOND = 1000.0


class TokenBucket:
    """`rate` events per second, with bursts of up to one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.tokens = rate
        self.clock = clock
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class Route:
    zones: tuple[str, ...]
    handler: Handler
    server: str  # metrics label, e.g. dns://:53
    # Query classes some plugin of the chain answers (None: every class, e.g. forward).
    classes: frozenset[int] | None = frozenset({CLASS_IN})


class Dispatcher:
    def __init__(self, routes: Sequence[Route], observers: Observers = Observers()) -> None:
        self.routes = tuple(routes)
        self._by_zone = {z: r for r in self.routes for z in r.zones}
        self._zones = names.Zones(tuple(self._by_zone))
        self.observers = observers.answered
        self.on_panic = observers.panicked
        self.on_drop = observers.dropped
        self.fastpath = FastPath()
        self.fastpath.on_store.extend(observers.fast_stored)
        self._error_budget = TokenBucket(ERROR_REPLIES_PER_SECOND)
        self._logged: set[str] = set()

    def fast_answer(self, data: bytes) -> bytes | None:
        """A reply from bytes for a query answered before, or None (take the full path)."""
        return self.fastpath.answer(data)

    def route(self, name: str) -> tuple[str, Route] | None:
        zone = self._zones.match(name)
        if zone is None:
            return None
        return zone, self._by_zone[zone]

    async def handle(self, request: Request) -> Reply:
        """Answer a decoded request. Never raises."""
        reply, _ = await self._handle(request)
        return reply

    def _enter(self, request: Request) -> tuple[str, Route] | Reply:
        """The zone and chain that answer `request`, or the reply when none does."""
        found = self.route(request.name)
        if found is None:
            return Reply(rcode=REFUSED)
        route = found[1]
        if request.qclass != CLASS_IN and not (
            route.classes is None or request.qclass in route.classes
        ):
            # CH (chaos, template CH) and other classes enter only chains that answer them.
            return Reply(rcode=REFUSED)
        return found

    async def _handle(self, request: Request) -> tuple[Reply, str]:
        entry = self._enter(request)
        if isinstance(entry, Reply):
            return entry, DROPPED
        zone, route = entry
        try:
            return await route.handler(request), zone
        except Exception as exc:  # the one catch-all: a failing plugin costs one SERVFAIL
            return self._failed(request, exc), zone

    def _failed(self, request: Request, exc: Exception) -> Reply:
        key = f"{type(exc).__name__}: {exc}"
        if key not in self._logged and len(self._logged) < 1000:
            self._logged.add(key)
            # No query name here: query data reaches logs only through `log` and `errors`.
            log.exception("unexpected error answering a query of type %d: %s", request.qtype, key)
        for cb in self.on_panic:
            cb()
        return Reply(rcode=SERVFAIL, error=key)

    async def serve(
        self, data: bytes, proto: str, client: str, port: int, more: list[bytes] | None = None
    ) -> bytes | None:
        """Bytes in, bytes out (None: send nothing). Where the transport can send several
        messages for one query (TCP passes `more`), a zone transfer's records are split over
        messages: the first is returned, the others appended to `more`."""
        start = time.perf_counter()
        decoded = wire.decode_query(data, proto, client, port)
        if decoded is None:
            for drop in self.on_drop:
                drop(proto)
            return None
        if isinstance(decoded, bytes):
            # FORMERR/NOTIMP replies are rate-limited: answering every packet of a garbage
            # flood would spend on it the capacity legitimate clients need.
            if proto == "udp" and not self._error_budget.take():
                for drop in self.on_drop:
                    drop(proto)
                return None
            return decoded
        replay = memo.Memo()
        token = memo.current.set(replay)
        try:
            # _handle written out here: one coroutine less per query.
            entry = self._enter(decoded)
            if isinstance(entry, Reply):
                reply, zone = entry, DROPPED
            else:
                zone = entry[0]
                try:
                    reply = await entry[1].handler(decoded)
                except Exception as exc:  # the one catch-all, as in _handle
                    reply = self._failed(decoded, exc)
        finally:
            memo.current.reset(token)
        if reply.rcode == DROP:
            return None  # a plugin chose not to answer (acl drop)
        spans: list[wire.Span] = []
        try:
            if more is not None and decoded.qtype in transfer.TYPES and reply.answer:
                out, *rest = transfer.messages(decoded, reply)
                more.extend(rest)
            else:
                out = wire.encode_spans(decoded, reply, spans)
        except (ValueError, OverflowError) as exc:
            log.error("cannot encode a reply: %s", exc)
            reply = Reply(rcode=SERVFAIL)
            out = wire.encode(decoded, reply)
            replay.deny()
        if proto == "udp" and replay.usable:
            self.fastpath.store(data, out, replay, spans, (decoded, reply, zone, replay.credit))
        if self.observers:
            elapsed = time.perf_counter() - start
            size = len(out) + sum(len(m) for m in more) if more else len(out)
            for obs in self.observers:
                obs(decoded, reply, zone, elapsed, size)
        return out

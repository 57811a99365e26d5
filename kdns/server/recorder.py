"""Per-query metrics: counted in plain dicts on the query path, exposed as CoreDNS's families.

prometheus-client's `labels().inc()` costs about 1.5 µs and each histogram `observe()` about 1 µs;
with six families per query that alone would be most of the per-query budget. The recorder keeps
integers in dicts keyed by label tuples and a bucket list per histogram, and a Collector turns
them into `coredns_dns_*` families only when Prometheus scrapes.

Names, labels and buckets are CoreDNS's (plugin/metrics/vars), so dashboards and alerts carry
over. Counters live as long as the App, across reloads, like CoreDNS's process-wide vectors.
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from kdns import metrics
from kdns.dns.message import Reply, Request, rcode_name
from kdns.dns.records import TYPE_NAMES
from kdns.metrics import SIZE_BUCKETS, TIME_BUCKETS
from kdns.server.dispatch import DROPPED, Observers, Route

__all__ = ["DROPPED", "TYPE_LABEL", "QueryRecorder", "observers"]


# CoreDNS's monitorType: these query types get their own label value, everything else "other".
_MONITORED = [
    "A",
    "AAAA",
    "MX",
    "SOA",
    "CNAME",
    "PTR",
    "TXT",
    "NS",
    "SRV",
    "DS",
    "DNSKEY",
    "RRSIG",
    "NSEC",
    "NSEC3",
    "HTTPS",
    "IXFR",
    "AXFR",
    "ANY",
]
TYPE_LABEL: dict[int, str] = {t: n for t, n in TYPE_NAMES.items() if n in _MONITORED}


def _fmt_bound(b: float) -> str:
    # Go's strconv 'g' formatting, as client_golang writes `le`: 100 not 100.0.
    return str(int(b)) if float(b).is_integer() else repr(float(b))


class _Histogram:
    """Non-cumulative bucket counts plus sum; the last slot is +Inf."""

    __slots__ = ("counts", "sum")

    def __init__(self, n: int) -> None:
        self.counts = [0] * (n + 1)
        self.sum = 0.0


class _Slots:
    """Every counter and histogram one kind of answered query bumps (server, zone, protocol,
    family, type, DO bit, rcode, plugin), looked up once and then bumped directly."""

    __slots__ = ("do", "dur", "req", "req_cell", "resp", "resp_cell")

    def __init__(
        self, rec: QueryRecorder, server: str, zone: str, request: Request, rcode: int, plugin: str
    ) -> None:
        family = "2" if ":" in request.client else "1"
        key = (server, zone, request.proto, family, TYPE_LABEL.get(request.qtype, "other"))
        self.req_cell = rec.requests.setdefault(key, [0])
        sz = (server, zone)
        self.do = rec.do_requests.setdefault(sz, [0]) if request.do else None
        rkey = (server, zone, rcode_name(rcode), plugin)
        self.resp_cell = rec.responses.setdefault(rkey, [0])
        pkey = (server, zone, request.proto)
        self.dur = rec.duration.setdefault(sz, _Histogram(len(TIME_BUCKETS)))
        self.req = rec.req_size.setdefault(pkey, _Histogram(len(SIZE_BUCKETS)))
        self.resp = rec.resp_size.setdefault(pkey, _Histogram(len(SIZE_BUCKETS)))

    def count(self, seconds: float, req_size: int, resp_size: int) -> None:
        self.req_cell[0] += 1
        self.resp_cell[0] += 1
        if self.do is not None:
            self.do[0] += 1
        h = self.dur
        h.counts[bisect_left(TIME_BUCKETS, seconds)] += 1
        h.sum += seconds
        h = self.req
        h.counts[bisect_left(SIZE_BUCKETS, req_size)] += 1
        h.sum += req_size
        h = self.resp
        h.counts[bisect_left(SIZE_BUCKETS, resp_size)] += 1
        h.sum += resp_size


class FastHandle:
    """The slots one fast-path reply touches, with its fixed sizes: bumped by n on n hits."""

    __slots__ = ("req_at", "resp_at", "size_req", "size_resp", "slots")

    def __init__(self, slots: _Slots, req_size: int, resp_size: int) -> None:
        self.slots = slots
        self.size_req = req_size
        self.size_resp = resp_size
        self.req_at = bisect_left(SIZE_BUCKETS, req_size)
        self.resp_at = bisect_left(SIZE_BUCKETS, resp_size)

    def __call__(self, n: int = 1) -> None:
        slots = self.slots
        slots.req_cell[0] += n
        slots.resp_cell[0] += n
        if slots.do is not None:
            slots.do[0] += n
        # A fast-path reply is a few dictionary reads: it lands in the first duration bucket.
        slots.dur.counts[0] += n
        req = slots.req
        req.counts[self.req_at] += n
        req.sum += self.size_req * n
        resp = slots.resp
        resp.counts[self.resp_at] += n
        resp.sum += self.size_resp * n


# Kinds of query remembered with their slots; a flood of odd query types cannot grow it past.
MAX_KINDS = 4096


class QueryRecorder(Collector):
    """The core `coredns_dns_*` series and `coredns_panics_total`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry  # flushed before each collection (fast-path hits in batches)
        # Counts live in one-element lists so a fast-path handle can bump them directly.
        self.requests: dict[tuple[str, str, str, str, str], list[int]] = {}
        self.do_requests: dict[tuple[str, str], list[int]] = {}
        self.responses: dict[tuple[str, str, str, str], list[int]] = {}
        self.duration: dict[tuple[str, str], _Histogram] = {}
        self.req_size: dict[tuple[str, str, str], _Histogram] = {}
        self.resp_size: dict[tuple[str, str, str], _Histogram] = {}
        self.panics = 0
        self.drops: dict[tuple[str, str], int] = {}  # (server, proto): queries sent no reply
        self._kinds: dict[tuple[str, str, str, bool, int, bool, int, str], _Slots] = {}
        self._handles: dict[tuple[_Slots, int, int], FastHandle] = {}

    def count_panic(self) -> None:
        self.panics += 1

    def count_drop(self, server: str, proto: str) -> None:
        self.drops[server, proto] = self.drops.get((server, proto), 0) + 1

    def slots(self, server: str, zone: str, request: Request, rcode: int, plugin: str) -> _Slots:
        """The slots a query of this kind bumps (made on its first sighting)."""
        kind = (
            server, zone, request.proto, ":" in request.client, request.qtype, request.do,
            rcode, plugin,
        )  # fmt: skip
        slots = self._kinds.get(kind)
        if slots is None:
            if len(self._kinds) >= MAX_KINDS:
                self._kinds.clear()  # the counters stay; only the shortcut is rebuilt
            slots = self._kinds[kind] = _Slots(self, server, zone, request, rcode, plugin)
        return slots

    def fast_handle(self, slots: _Slots, req_size: int, resp_size: int) -> FastHandle:
        """What each fast-path hit of a reply of this kind and these sizes bumps: one handle
        for every stored reply alike (names of one length), not one per reply."""
        key = (slots, req_size, resp_size)
        handle = self._handles.get(key)
        if handle is None:
            if len(self._handles) >= MAX_KINDS:
                self._handles.clear()  # handles given out still count right
            handle = self._handles[key] = FastHandle(slots, req_size, resp_size)
        return handle

    def observe(
        self, server: str, request: Request, reply: Reply, zone: str, seconds: float, size: int
    ) -> None:
        slots = self.slots(server, zone, request, reply.rcode, reply.plugin)
        slots.count(seconds, request.size, size)

    # -- exposition ---------------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: names are known not to clash with the plugin families

    def collect(self) -> Iterator[Metric]:
        metrics.flush(self.registry)
        c = CounterMetricFamily(
            "coredns_dns_requests_total",
            "Counter of DNS requests made per zone, protocol and family.",
            labels=("server", "zone", "view", "proto", "family", "type"),
        )
        for (server, zone, proto, family, qtype), n in list(self.requests.items()):
            c.add_metric([server, zone, "", proto, family, qtype], n[0])
        yield c
        c = CounterMetricFamily(
            "coredns_dns_do_requests_total",
            "Counter of DNS requests with DO bit set per zone.",
            labels=("server", "zone", "view"),
        )
        for (server, zone), n in list(self.do_requests.items()):
            c.add_metric([server, zone, ""], n[0])
        yield c
        c = CounterMetricFamily(
            "coredns_dns_responses_total",
            "Counter of response status codes.",
            labels=("server", "zone", "view", "rcode", "plugin"),
        )
        for (server, zone, rcode, plugin), n in list(self.responses.items()):
            c.add_metric([server, zone, "", rcode, plugin], n[0])
        yield c
        yield self._histogram(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took per zone.",
            ("server", "zone", "view"),
            TIME_BUCKETS,
            {(s, z, ""): h for (s, z), h in list(self.duration.items())},
        )
        yield self._histogram(
            "coredns_dns_request_size_bytes",
            "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
            ("server", "zone", "view", "proto"),
            SIZE_BUCKETS,
            {(s, z, "", p): h for (s, z, p), h in list(self.req_size.items())},
        )
        yield self._histogram(
            "coredns_dns_response_size_bytes",
            "Size of the returned response in bytes.",
            ("server", "zone", "view", "proto"),
            SIZE_BUCKETS,
            {(s, z, "", p): h for (s, z, p), h in list(self.resp_size.items())},
        )
        c = CounterMetricFamily(
            "coredns_panics_total", "A metrics that counts the number of panics."
        )
        c.add_metric([], self.panics)
        yield c
        # kdns's own: CoreDNS answers every query it can parse, kdns drops undecodable ones and
        # error replies over the rate limit (docs/hardening.md).
        c = CounterMetricFamily(
            "kdns_dns_dropped_requests_total",
            "Queries sent no reply: not decodable, or an error reply over the rate limit.",
            labels=("server", "proto"),
        )
        for (server, proto), dropped in list(self.drops.items()):
            c.add_metric([server, proto], dropped)
        yield c

    @staticmethod
    def _histogram(
        name: str,
        doc: str,
        labels: Sequence[str],
        bounds: Sequence[float],
        series: dict[tuple[str, ...], _Histogram],
    ) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=labels)
        for values, h in series.items():
            counts = list(h.counts)
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, n in zip(bounds, counts, strict=False):
                running += n
                buckets.append((_fmt_bound(bound), running))
            running += counts[-1]
            buckets.append(("+Inf", running))
            fam.add_metric(list(values), buckets, h.sum)
        return fam


def observers(
    recorder: QueryRecorder,
    routes: Sequence[Route],
    port: int,
    counted: set[tuple[str, int]],
) -> Observers:
    """What a dispatcher over `routes` on `port` reports: every panic and dropped query, and
    the queries of the (zone, port) pairs in `counted` (the blocks that enable prometheus)."""
    observe = recorder.observe
    default = routes[0].server
    panicked = (recorder.count_panic,)
    dropped = (functools.partial(recorder.count_drop, default),)
    servers = {z: r.server for r in routes for z in r.zones}
    enabled = {z for z in servers if (z, port) in counted}
    if not enabled:
        return Observers(panicked=panicked, dropped=dropped)
    enabled.add(DROPPED)

    def observer(request: Request, reply: Reply, zone: str, seconds: float, size: int) -> None:
        if zone in enabled:
            observe(servers.get(zone, default), request, reply, zone, seconds, size)

    def fast_stored(stat: object, size: int) -> Callable[[int], None] | None:
        # The fast path keeps a reply: `stat` is what the full path saw; resolve the counters
        # its hits bump once, and hand back what each hit calls.
        # The memo's credit names the plugin re-serves count for (the cache, whose entry
        # these bytes are, even when they were stored from the miss that filled it).
        seen: tuple[Request, Reply, str, str] = stat  # type: ignore[assignment]
        request, reply, zone, credit = seen
        if zone not in enabled:
            return None
        server = servers.get(zone, default)
        plugin = credit or reply.plugin
        slots = recorder.slots(server, zone, request, reply.rcode, plugin)
        return recorder.fast_handle(slots, request.size, size)

    return Observers((observer,), panicked, dropped, (fast_stored,))

"""`forward FROM TO... { ... }`: send queries to upstream resolvers, as CoreDNS's `forward`.

Upstreams are tried in policy order (random, round_robin, sequential); an upstream that fails
gets health-checked (`. IN NS`) every `health_check` interval until it answers, and is skipped
while `max_fails` consecutive checks failed. Each attempt waits at most READ_TIMEOUT, the whole
query at most TIMEOUT, then the client gets SERVFAIL. Identical questions in flight at once share
one upstream exchange, so a burst of clients cannot multiply upstream load (or the chances of a
spoofed reply being accepted). `max_concurrent` turns excess queries into REFUSED.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Histogram

from kdns import metrics
from kdns.corefile import Directive
from kdns.dns import names
from kdns.dns.message import (
    FORMERR,
    NOERROR,
    NXDOMAIN,
    OPT_COOKIE,
    REFUSED,
    SERVFAIL,
    Edns,
    Reply,
    Request,
    rcode_name,
)
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec, Service, TaskSet
from kdns.plugins.upstreams import EXPIRE, ForwardConfig, Proxy, UpstreamAddr, parse_upstream
from kdns.transport import dot
from kdns.transport.client import ExchangeError, Question

log = logging.getLogger("kdns.forward")

MAX_UPSTREAMS = 15
PROPERTIES = (
    "except",
    "force_tcp",
    "prefer_udp",
    "expire",
    "max_fails",
    "max_connect_attempts",
    "policy",
    "health_check",
    "max_concurrent",
    "failfast_all_unhealthy_upstreams",
    "failover",
    "next",
    "read_timeout",
    "source_address",
    "tls",
    "tls_servername",
    "max_idle_conns",
    "max_age",
)
_RCODES = {"NOERROR": NOERROR, "SERVFAIL": SERVFAIL, "NXDOMAIN": NXDOMAIN, "REFUSED": REFUSED}
_RCODES["FORMERR"] = FORMERR


def _rcodes(sub: Directive) -> frozenset[int]:
    if not sub.args:
        raise sub.error(f"{sub.name} needs at least one RCODE (e.g. {sub.name} SERVFAIL)")
    out = set()
    for tok in sub.args:
        code = _RCODES.get(tok.text.upper())
        if code is None:
            raise tok.error(f"unknown rcode {tok.text!r} (expected one of: {', '.join(_RCODES)})")
        out.add(code)
    return frozenset(out)


def parse(d: Directive, block: BlockInfo) -> ForwardConfig:
    if len(d.args) < 2:
        raise d.error("wrong number of arguments for forward: usage: forward FROM TO...")
    zones = tuple(parsing.zone(d.args[0]))
    base_dir = Path(d.file).parent
    upstreams: list[UpstreamAddr] = []
    for tok in d.args[1:]:
        upstreams.extend(parse_upstream(tok, base_dir))
    if not upstreams:
        raise d.args[1].error("forward: no valid upstream addresses found")
    if len(upstreams) > MAX_UPSTREAMS:
        raise d.args[1].error(f"forward takes at most {MAX_UPSTREAMS} upstreams")
    opts: dict[str, object] = {}
    for sub in d.block or ():
        name, args = sub.name, sub.args
        parsing.no_block(sub)
        if name == "except":
            if not args:
                raise sub.error("except needs at least one domain")
            opts["ignored"] = parsing.zones(args, ())
        elif name in ("force_tcp", "prefer_udp", "failfast_all_unhealthy_upstreams"):
            parsing.no_args(sub)
            opts["failfast" if name.startswith("failfast") else name] = True
        elif name == "expire":
            parsing.arg_count(sub, 1, 1, "expire DURATION")
            opts["expire"] = parsing.duration(args[0])
        elif name == "max_idle_conns":
            parsing.arg_count(sub, 1, 1, "max_idle_conns INTEGER")
            opts["max_idle_conns"] = parsing.integer(args[0], 0, 1 << 31, name)
        elif name == "max_age":
            parsing.arg_count(sub, 1, 1, "max_age DURATION")
            opts["max_age"] = parsing.duration(args[0])
        elif name == "max_fails":
            parsing.arg_count(sub, 1, 1, "max_fails INTEGER")
            opts["max_fails"] = parsing.integer(args[0], 0, 1 << 31, "max_fails")
        elif name == "max_connect_attempts":
            parsing.arg_count(sub, 1, 1, "max_connect_attempts INTEGER")
            opts["max_connect_attempts"] = parsing.integer(args[0], 0, 1 << 31, name)
        elif name == "max_concurrent":
            parsing.arg_count(sub, 1, 1, "max_concurrent MAX")
            opts["max_concurrent"] = parsing.integer(args[0], 0, 1 << 31, "max_concurrent")
        elif name == "policy":
            parsing.arg_count(sub, 1, 1, "policy random|round_robin|sequential")
            if args[0].text not in ("random", "round_robin", "sequential"):
                raise args[0].error(
                    f"policy must be random, round_robin or sequential, got {args[0].text!r}"
                )
            opts["policy"] = args[0].text
        elif name == "health_check":
            _health_check(sub, opts)
        elif name == "failover":
            failover = _rcodes(sub)
            if NOERROR in failover:
                raise sub.error("NoError cannot be used in failover")
            opts["failover"] = failover
        elif name == "read_timeout":
            parsing.arg_count(sub, 1, 1, "read_timeout DURATION")
            opts["read_timeout"] = parsing.duration(args[0])
            if not opts["read_timeout"]:
                raise args[0].error("read_timeout must be positive")
        elif name == "tls":
            parsing.arg_count(sub, 0, 3, "tls [CERT KEY [CA]]")
            opts["tls"] = tuple(str(base_dir / t.text) for t in args)
        elif name == "tls_servername":
            parsing.arg_count(sub, 1, 1, "tls_servername NAME")
            opts["tls_servername"] = args[0].text
        elif name == "source_address":
            parsing.arg_count(sub, 1, 1, "source_address ADDRESS")
            opts["source_address"] = parsing.ip_address(args[0])
        elif name == "next":
            opts["next_rcodes"] = _rcodes(sub)
        else:
            raise parsing.unknown_property("forward", sub, PROPERTIES)
    max_age, expire = opts.get("max_age", 0.0), opts.get("expire", EXPIRE)
    assert isinstance(max_age, float) and isinstance(expire, float)
    if max_age and max_age < expire:
        raise d.error(f"max_age ({max_age:g}s) must not be shorter than expire ({expire:g}s)")
    for u in upstreams:
        if u.server_name and opts.get("tls_servername") not in (None, u.server_name):
            raise d.error(
                f"both forward ({opts['tls_servername']!r}) and proxy level ({u.server_name!r}) "
                f"TLS servernames are set for upstream proxy '{u.scheme}://{u.label}'"
            )
    return ForwardConfig(zones, tuple(upstreams), **opts)  # type: ignore[arg-type]


def _health_check(sub: Directive, opts: dict[str, object]) -> None:
    if not sub.args:
        raise sub.error("usage: health_check DURATION [no_rec] [domain FQDN]")
    opts["health_check"] = parsing.duration(sub.args[0])
    rest = list(sub.args[1:])
    while rest:
        tok = rest.pop(0)
        if tok.text == "no_rec":
            opts["health_rd"] = False
        elif tok.text == "domain":
            if not rest:
                raise tok.error("domain needs a name, e.g. domain example.org")
            opts["health_domain"] = parsing.zone(rest.pop(0))[0]
        else:
            raise tok.error(f"expected no_rec or domain FQDN, got {tok.text!r}")


# EDNS0 options that concern one hop only (RFC 7873 cookie, RFC 7828 TCP keepalive, RFC 7830
# padding): the client's are for this server, never sent on to the upstream.
HOP_BY_HOP = frozenset([OPT_COOKIE, 11, 12])


def upstream_edns(edns: Edns | None) -> Edns | None:
    """The client's OPT record as the upstream gets it: buffer size, DO bit and options as
    the client sent them (and as rewrite edns0 set them), less the hop-by-hop options; None
    (no OPT record) when the client sent none."""
    if edns is None or not any(code in HOP_BY_HOP for code, _ in edns.options):
        return edns
    kept = tuple(o for o in edns.options if o[0] not in HOP_BY_HOP)
    return Edns(edns.udp_size, edns.version, edns.do, kept)


def _share_key(request: Request) -> tuple[object, ...]:
    """Queries that may share one upstream exchange: the same question, flags and the EDNS
    record the upstream gets (a client's cookie differs per client, so it is not part of it)."""
    edns = upstream_edns(request.edns)
    return (request.name, request.qtype, request.qclass, request.cd, request.rd, edns)


class ForwardPlugin(Service):
    name = "forward"

    def __init__(self, config: ForwardConfig, ctx: BuildContext) -> None:
        self.config = config
        reg = self._registry = ctx.registry
        self._duration: Histogram = metrics.histogram(
            reg,
            "coredns_proxy_request_duration_seconds",
            "Histogram of the time each request took.",
            ("proxy_name", "to", "rcode"),
        )
        hc_failures = metrics.counter(
            reg,
            "coredns_proxy_healthcheck_failures_total",
            "Counter of the number of failed healthchecks.",
            ("proxy_name", "to"),
        )
        self._broken = metrics.counter(
            reg,
            "coredns_forward_healthcheck_broken_total",
            "Counter of the number of complete failures of the healthchecks.",
        )
        self._rejects = metrics.counter(
            reg,
            "coredns_forward_max_concurrent_rejects_total",
            "Counter of the number of queries rejected because the concurrent queries were at "
            "maximum.",
        )
        # One TLS context for the block's tls:// and https:// upstreams; a bad certificate file
        # stops start-up.
        tls = None
        if any(a.tls or a.https for a in config.upstreams):
            try:
                tls = dot.context(config.tls or ())
            except (OSError, ssl.SSLError) as exc:
                ctx.fatal(f"forward: cannot load tls files {' '.join(config.tls or ())}: {exc}")
        # Health probes and exchanges in flight, ended when the running part is left.
        self._tasks = TaskSet()
        self.proxies = [
            Proxy(
                a,
                config,
                hc_failures.labels("forward", a.label),
                tls,
                self._conn_cache(a),
                self._tasks,
            )
            for a in config.upstreams
        ]
        self._rr = itertools.count()
        self._inflight = 0
        self._shared: dict[tuple[object, ...], asyncio.Task[Reply]] = {}
        self._timers: dict[tuple[str, str], object] = {}

    def _conn_cache(self, addr: UpstreamAddr) -> Callable[[str, bool], None]:
        reg = self._registry
        hits = metrics.counter(
            reg,
            "coredns_proxy_conn_cache_hits_total",
            "Counter of connection cache hits per upstream and protocol.",
            ("proxy_name", "to", "proto"),
        )
        misses = metrics.counter(
            reg,
            "coredns_proxy_conn_cache_misses_total",
            "Counter of connection cache misses per upstream and protocol.",
            ("proxy_name", "to", "proto"),
        )

        def count(proto: str, hit: bool) -> None:
            (hits if hit else misses).labels("forward", addr.label, proto).inc()

        return count

    def wanted(self, name: str) -> bool:
        if names.longest_zone(name, self.config.zones) is None:
            return False
        return not (self.config.ignored and names.longest_zone(name, self.config.ignored))

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        if not self.wanted(request.name):
            return await call_next(request)
        memo.deny()  # an upstream's answer has its own lifetime: only a cache may re-serve it
        cfg = self.config
        if cfg.max_concurrent and self._inflight >= cfg.max_concurrent:
            self._rejects.inc()
            return Reply(rcode=REFUSED, plugin=self.name)
        self._inflight += 1
        try:
            proto = "tcp" if cfg.force_tcp else "udp" if cfg.prefer_udp else request.proto
            key = _share_key(request)
            task = self._shared.get(key)
            if task is None:
                task = self._tasks.start(self._forward(request, proto), f"forward {key[0]}")
                self._shared[key] = task
                task.add_done_callback(functools.partial(self._done, key))
            reply = await asyncio.shield(task)
        finally:
            self._inflight -= 1
        if reply.rcode in cfg.next_rcodes:
            return await call_next(request)
        return reply

    def _done(self, key: tuple[object, ...], _task: asyncio.Task[Reply]) -> None:
        self._shared.pop(key, None)

    def _ordered(self) -> list[Proxy]:
        policy = self.config.policy
        if policy == "random":
            return random.sample(self.proxies, len(self.proxies))
        if policy == "round_robin":
            n = next(self._rr) % len(self.proxies)
            return self.proxies[n:] + self.proxies[:n]
        return list(self.proxies)

    def _observe(self, proxy: Proxy, rcode: int, seconds: float) -> None:
        key = (proxy.addr.label, rcode_name(rcode))
        child = self._timers.get(key)
        if child is None:
            child = self._duration.labels("forward", *key)
            self._timers[key] = child
        child.observe(seconds)  # type: ignore[attr-defined]

    async def _forward(self, request: Request, proto: str) -> Reply:
        """CoreDNS's loop: walk the list, skip down upstreams, retry until the deadline."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + cfg.timeout
        question = Question(
            request.qname,
            request.qtype,
            request.qclass,
            request.rd,
            request.cd,
            upstream_edns(request.edns),
        )
        proxies = self._ordered()
        i = skipped = attempts = 0
        pass_start = start
        errors: list[str] = []
        while loop.time() < deadline:
            if cfg.max_connect_attempts and attempts >= cfg.max_connect_attempts:
                break
            if i >= len(proxies):
                # Every upstream failed at once (refused, unreachable): looping on them would
                # only spin; give up. Slow failures (timeouts) are retried until the deadline.
                if loop.time() - pass_start < cfg.read_timeout / 4:
                    break
                i = skipped = 0
                pass_start = loop.time()
            proxy = proxies[i]
            i += 1
            if proxy.down():
                skipped += 1
                if skipped < len(proxies):
                    continue
                # Every upstream is marked down: the health checks are likely broken.
                self._broken.inc()
                if cfg.failfast:
                    return Reply(rcode=SERVFAIL, plugin=self.name, error="no healthy upstream")
                proxy = random.choice(self.proxies)
            attempts += 1
            sent = loop.time()
            try:
                msg = await proxy.ask(
                    question, max(0.01, min(cfg.read_timeout, deadline - sent)), proto
                )
            except ExchangeError as exc:
                errors.append(f"{proxy.addr.label}: {exc}")
                if cfg.max_fails:
                    proxy.check()
                continue
            self._observe(proxy, msg.rcode, loop.time() - sent)
            if msg.rcode in cfg.failover and i < len(proxies):
                continue
            return msg.to_reply(self.name)
        why = "; ".join(errors[-3:]) or "no upstream tried"
        return Reply(rcode=SERVFAIL, plugin=self.name, error=f"forward: {why}")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self._tasks.close()  # health probes and exchanges in flight
            for p in self.proxies:
                await p.close()


@dataclass(frozen=True, slots=True)
class ForwardSet:
    """Several `forward` directives in one block (CoreDNS 1.12+), each for its FROM zones."""

    configs: tuple[ForwardConfig, ...]


def merge(first: ForwardConfig | ForwardSet, later: ForwardConfig) -> ForwardSet:
    configs = first.configs if isinstance(first, ForwardSet) else (first,)
    return ForwardSet((*configs, later))


class ForwardChain(Service):
    """The block's forwards, the one with the longest FROM zone matching a name first; a name
    none of them wants goes to the next plugin."""

    name = "forward"

    def __init__(self, plugins: list[ForwardPlugin]) -> None:
        self.plugins = sorted(plugins, key=lambda p: -max(len(z) for z in p.config.zones))

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        for fwd in self.plugins:
            if fwd.wanted(request.name):
                return await fwd(request, call_next)
        return await call_next(request)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for fwd in self.plugins:
                await stack.enter_async_context(fwd.running())
            yield


def build(config: ForwardConfig | ForwardSet, ctx: BuildContext) -> ForwardPlugin | ForwardChain:
    if isinstance(config, ForwardSet):
        return ForwardChain([ForwardPlugin(c, ctx) for c in config.configs])
    return ForwardPlugin(config, ctx)


SPEC = PluginSpec("forward", parse, build, repeatable=True, merge=merge)

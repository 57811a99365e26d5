"""`forward`'s upstreams: their addresses (`IP[:PORT]`, `dns://`, `tls://IP[%NAME][:PORT]`,
`https://IP[%NAME][:PORT]` for DNS over HTTPS to /dns-query, and resolv.conf files naming
nameservers), the settings they are asked with, and the Proxy that asks one of them and
health-checks it."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kdns.cluster import search
from kdns.corefile import Token
from kdns.dns.records import NS
from kdns.dns.wire import Message
from kdns.hostport import show, split_optional
from kdns.plugins.base import TaskSet
from kdns.transport import client, doh, dot
from kdns.transport.client import ExchangeError, Question

READ_TIMEOUT = 2.0
TIMEOUT = 5.0
EXPIRE = 10.0


@dataclass(frozen=True, slots=True)
class UpstreamAddr:
    host: str
    port: int
    tls: bool = False  # DNS over TLS (a tls:// upstream)
    server_name: str | None = None  # tls://IP%NAME: the name its certificate must carry
    https: bool = False  # DNS over HTTPS (an https:// upstream)

    @property
    def scheme(self) -> str:
        return "https" if self.https else "tls" if self.tls else "dns"

    @property
    def label(self) -> str:
        return show(self.host, self.port)


@dataclass(frozen=True, slots=True)
class ForwardConfig:
    zones: tuple[str, ...]
    upstreams: tuple[UpstreamAddr, ...]
    ignored: tuple[str, ...] = ()
    policy: str = "random"
    health_check: float = 0.5
    health_rd: bool = True
    health_domain: str = "."
    max_fails: int = 2
    max_concurrent: int = 0
    max_connect_attempts: int = 0
    force_tcp: bool = False
    prefer_udp: bool = False
    expire: float = EXPIRE  # a pooled connection idle this long is closed
    max_idle_conns: int = 0  # idle connections kept per upstream (0: no bound)
    max_age: float = 0.0  # no pooled connection is used once this old (0: no bound)
    failfast: bool = False
    failover: frozenset[int] = frozenset()
    next_rcodes: frozenset[int] = frozenset()
    read_timeout: float = READ_TIMEOUT  # how long one upstream gets to answer one try
    source_address: str | None = None  # local address the upstream sockets bind to
    tls: tuple[str, ...] | None = None  # `tls [CA] | [CERT KEY [CA]]` files; None: not given
    tls_servername: str | None = None
    timeout: float = TIMEOUT  # not a Corefile option; tests shorten it


def _digits(text: str) -> bool:
    # str.isdigit() alone accepts '¹', which int() refuses.
    return text.isascii() and text.isdigit()


def _host_port(tok: Token, text: str, default_port: int = 53) -> UpstreamAddr | None:
    """`IP`, `IP:PORT`, `[IPv6]:PORT` -> address; None if `text` is no address at all."""
    try:
        host, port_text = split_optional(text)
    except ValueError:
        raise tok.error(f"invalid upstream address {tok.text!r}") from None
    port = default_port
    if port_text is not None:
        if not _digits(port_text):
            raise tok.error(f"invalid port in upstream {tok.text!r}")
        port = int(port_text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not 0 < port < 65536:
        raise tok.error(f"upstream port must be between 1 and 65535, got {port}")
    return UpstreamAddr(str(ip), port)


_DEFAULT_PORTS = {"dns": 53, "tls": 853, "https": 443}


def _scheme_upstream(tok: Token, scheme: str, rest: str) -> UpstreamAddr:
    name = None
    if scheme == "https" and "/" in rest:
        # CoreDNS queries the RFC 8484 path /dns-query itself; a URL path cannot be chosen.
        raise tok.error(
            f"paths are not allowed in HTTPS upstream addresses: {tok.text!r} (write "
            "https://IP[:PORT]; queries go to /dns-query)"
        )
    if scheme != "dns" and "%" in rest:
        # tls://IP%NAME[:PORT] and tls://[IPv6%NAME]:PORT name the certificate's server name.
        head, _, tail = rest.partition("%")
        name, sep, after = tail.partition("]" if head.startswith("[") else ":")
        if head.startswith("["):
            rest = f"{head}]{after}"
        else:
            after_port = after if sep else ""
            rest = f"{head}:{after_port}" if after_port else head
    found = _host_port(tok, rest, _DEFAULT_PORTS[scheme])
    if found is None or (name is not None and not name):
        raise tok.error(f"upstream {tok.text!r} is not an IP address")
    if scheme == "dns":
        return found
    secure = {"tls": scheme == "tls", "https": scheme == "https"}
    return UpstreamAddr(found.host, found.port, server_name=name, **secure)


def resolv_conf_nameservers(path: Path) -> list[str]:
    return [
        args[0].split("%")[0]  # a link-local scope names an interface, not the upstream
        for _, key, args in search.resolv_lines(path.read_text())
        if key == "nameserver" and args
    ]


def parse_upstream(tok: Token, base_dir: Path) -> list[UpstreamAddr]:
    text = tok.text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme not in _DEFAULT_PORTS:
            raise tok.error(
                f"upstream transport {scheme}:// is not supported (kdns forwards DNS, DNS "
                "over TLS and DNS over HTTPS: IP[:port], dns://IP[:port], "
                "tls://IP[%NAME][:port], https://IP[%NAME][:port])"
            )
        return [_scheme_upstream(tok, scheme, rest)]
    found = _host_port(tok, text)
    if found is not None:
        return [found]
    path = base_dir / text
    if not path.is_file():
        raise tok.error(f"upstream {text!r} is not an IP address or an existing resolv.conf file")
    try:
        servers = resolv_conf_nameservers(path)
    except OSError as exc:
        raise tok.error(f"cannot read {text}: {exc.strerror}") from None
    out = []
    for s in servers:
        addr = _host_port(tok, s if ":" not in s else f"[{s}]")
        if addr is not None:
            out.append(addr)
    return out  # an empty file is fine while other upstreams remain (CoreDNS)


class Proxy:
    """One upstream: its failure count and the health check that clears it."""

    def __init__(
        self,
        addr: UpstreamAddr,
        config: ForwardConfig,
        failures: object,
        tls: ssl.SSLContext | None = None,
        conn_cache: Callable[[str, bool], None] | None = None,
        tasks: TaskSet | None = None,
    ) -> None:
        self.addr = addr
        self.config = config
        self.fails = 0
        # Connection reuse per protocol (coredns_proxy_conn_cache_hits/misses_total).
        self._conn_cache = conn_cache or (lambda proto, hit: None)
        # tls:// and https:// upstreams keep connections open across queries.
        self.pooled: dot.TlsUpstream | doh.HttpsUpstream | None = None
        name = addr.server_name or config.tls_servername or addr.host
        if addr.tls:
            self.pooled = dot.TlsUpstream(
                addr.host,
                addr.port,
                tls or dot.context(),
                name,
                config.expire,
                config.max_age,
                config.source_address,
                functools.partial(self._conn_cache, "tcp-tls"),
            )
        elif addr.https:
            self.pooled = doh.HttpsUpstream(
                addr.host,
                addr.port,
                tls or dot.context(),
                name,
                expire=config.expire,
                max_idle=config.max_idle_conns,
                max_age=config.max_age,
                source=config.source_address,
                on_connection=functools.partial(self._conn_cache, "https"),
            )
        self._probe: asyncio.Task[None] | None = None
        self._tasks = tasks if tasks is not None else TaskSet()  # the plugin's: it closes them
        self._failures = failures

    def down(self) -> bool:
        return self.config.max_fails != 0 and self.fails >= self.config.max_fails

    def check(self) -> None:
        """Start health-checking (once): probe until the upstream answers."""
        if self._probe is None or self._probe.done():
            self._probe = self._tasks.start(self._run_probe(), f"healthcheck {self.addr}")

    async def ask(self, question: Question, timeout: float, proto: str) -> Message:
        """One exchange with this upstream: over its pooled TLS or HTTPS connections, or plain
        UDP/TCP."""
        if self.pooled is not None:
            return await self.pooled.exchange(question, timeout)
        self._conn_cache(proto, False)  # plain UDP and TCP open a socket per query
        return await client.exchange(
            self.addr.host,
            self.addr.port,
            question,
            timeout,
            proto=proto,
            source=self.config.source_address,
        )

    async def probe_once(self) -> bool:
        cfg = self.config
        question = Question(cfg.health_domain, NS, rd=cfg.health_rd)
        proto = "tcp" if cfg.force_tcp else "udp"
        try:
            await self.ask(question, cfg.read_timeout, proto)
        except ExchangeError:
            self.fails += 1
            self._failures.inc()  # type: ignore[attr-defined]
            return False
        self.fails = 0  # any reply, even SERVFAIL, means the upstream is there
        return True

    async def _run_probe(self) -> None:
        while True:
            if await self.probe_once():
                return
            await asyncio.sleep(self.config.health_check)

    async def close(self) -> None:
        """Close the pooled connections; the health probe is the forward plugin's to end."""
        if self.pooled is not None:
            await self.pooled.close()

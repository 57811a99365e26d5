"""DNS over HTTPS (RFC 8484) to one upstream: a POST of application/dns-message to /dns-query.

aiohttp does the HTTP and Python's `ssl` the TLS: certificate and server-name verification are
on unless the Corefile says otherwise. Connections are pooled per upstream and reused across
queries, within forward's bounds: `expire` (idle time before a pooled connection is dropped),
`max_idle_conns` (idle connections kept) and `max_age` (no connection reused past this age).
The query goes with ID 0 (RFC 8484 section 4.1); TLS, not the ID, is what makes a reply
trustworthy here, and the reply must still answer the question asked.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import Callable
from time import monotonic
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey

from kdns.dns.wire import Message
from kdns.hostport import bracket, show
from kdns.transport.client import ExchangeError, Question, encode, matches

PATH = "/dns-query"
MIME = "application/dns-message"
MAX_MESSAGE = 65535


class Pool(aiohttp.TCPConnector):
    """aiohttp's connection pool bounded as CoreDNS bounds its upstream connections.

    aiohttp drops a connection idle longer than its keep-alive timeout (`expire`); this adds
    `max_idle` (a connection coming back when that many are idle is closed instead) and
    `max_age` (a connection that old is closed rather than handed out or taken back).
    """

    def __init__(
        self,
        tls: ssl.SSLContext,
        *,
        expire: float,
        max_idle: int = 0,
        max_age: float = 0.0,
        local_addr: tuple[str, int] | None = None,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        kw: dict[str, Any] = {"force_close": True} if expire <= 0 else {"keepalive_timeout": expire}
        super().__init__(ssl=tls, local_addr=local_addr, **kw)
        self.max_idle, self.max_age = max_idle, max_age
        self.on_connection = on_connection  # told, per query, whether a connection was reused
        self.opened = 0  # connections made, for tests and metrics
        self.reused = 0  # queries sent on a pooled connection
        self._born: weakref.WeakKeyDictionary[ResponseHandler, float] = weakref.WeakKeyDictionary()

    def _too_old(self, proto: ResponseHandler, now: float) -> bool:
        born = self._born.get(proto)
        return bool(self.max_age) and born is not None and now - born >= self.max_age

    async def connect(self, req: Any, traces: Any, timeout: Any) -> aiohttp.connector.Connection:
        while True:
            conn = await super().connect(req, traces, timeout)
            proto = conn.protocol
            if proto is None:
                return conn
            now = monotonic()
            reused = proto in self._born
            if reused and self._too_old(proto, now):
                conn.close()  # pooled past max_age: close it and take the next (or a new one)
                continue
            if reused:
                self.reused += 1
            else:
                self._born[proto] = now
                self.opened += 1
            if self.on_connection is not None:
                self.on_connection(reused)
            return conn

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        # aiohttp's hook for a connection going back to the pool.
        idle = self._conns.get(key)
        if self.max_idle and idle is not None and len(idle) >= self.max_idle:
            should_close = True
        if self._too_old(protocol, monotonic()):
            should_close = True
        super()._release(key, protocol, should_close=should_close)


class HttpsUpstream:
    """One DoH upstream `https://HOST:PORT/dns-query`, its connection pool and session."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: ssl.SSLContext,
        server_name: str,
        *,
        expire: float,
        max_idle: int = 0,
        max_age: float = 0.0,
        source: str | None = None,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self.host, self.port, self.server_name = host, port, server_name
        self.url = f"https://{bracket(host)}:{port}{PATH}"
        self.headers = {"Content-Type": MIME, "Accept": MIME}
        if server_name != host:
            # Some providers refuse a query whose Host (HTTP/2 :authority) is an IP address.
            self.headers["Host"] = server_name if port == 443 else f"{server_name}:{port}"
        self._pool_args: dict[str, Any] = {
            "expire": expire,
            "max_idle": max_idle,
            "max_age": max_age,
            "local_addr": None if source is None else (source, 0),
            "on_connection": on_connection,
        }
        self._tls = tls
        self.pool: Pool | None = None
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            self.pool = Pool(self._tls, **self._pool_args)
            self._session = aiohttp.ClientSession(
                connector=self.pool, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def exchange(self, question: Question, timeout: float) -> Message:
        where = show(self.host, self.port)
        try:
            async with asyncio.timeout(timeout):
                async with self._client().post(
                    self.url,
                    data=encode(question, 0),
                    headers=self.headers,
                    server_hostname=self.server_name,
                    allow_redirects=False,
                ) as resp:
                    if resp.status != 200:
                        raise ExchangeError(f"https: {where} answered HTTP {resp.status}")
                    data = await _body(resp)
        except TimeoutError:
            raise ExchangeError(f"https: no reply from {where} in {timeout:g}s") from None
        except aiohttp.ClientSSLError as exc:
            raise ExchangeError(f"https: {self.server_name}: {_tls_reason(exc)}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ExchangeError(f"https: {where}: {exc or type(exc).__name__}") from exc
        msg = matches(data, 0, question)
        if msg is None:
            raise ExchangeError(f"https: {where} sent a reply that does not answer the question")
        return msg

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _body(resp: aiohttp.ClientResponse) -> bytes:
    """The reply body, refused beyond the largest DNS message."""
    if resp.content_length is not None and resp.content_length > MAX_MESSAGE:
        raise ExchangeError(f"https: reply of {resp.content_length} bytes is too large")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(4096):
        body += chunk
        if len(body) > MAX_MESSAGE:
            raise ExchangeError("https: reply is larger than a DNS message")
    return bytes(body)


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    cause = getattr(exc, "certificate_error", None) or exc.__cause__ or exc
    return str(getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or cause)

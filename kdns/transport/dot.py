"""DNS over TLS (RFC 7858) to one upstream: one persistent connection, queries pipelined.

Python's `ssl` does the TLS; certificate and server-name verification are on unless the Corefile
says otherwise. Every query on the connection carries its own random ID (none two in flight at
once); a reader task hands each reply to the query with that ID whose question it matches. The
connection is reopened when it has been idle longer than `expire` (forward's option, CoreDNS's
default 10s), when it is `max_age` old (the queries still in flight on it get their replies
first) or when the upstream closes it; a broken connection fails the queries in flight. With
one connection per upstream, any `max_idle_conns` bound holds already.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import Callable

from kdns.dns.wire import Message
from kdns.hostport import show
from kdns.transport.client import ExchangeError, Question, encode, matches, new_id


def context(args: tuple[str, ...] = ()) -> ssl.SSLContext:
    """CoreDNS's `tls [CA] | [CERT KEY [CA]]`: the CA to verify the upstream against (else the
    system's), and a client certificate to present."""
    cafile = args[0] if len(args) == 1 else args[2] if len(args) == 3 else None
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if len(args) >= 2:
        ctx.load_cert_chain(args[0], args[1])
    return ctx


class _Conn:
    """One TLS connection: its writer, its reader task and the IDs of the queries sent on it."""

    def __init__(self, writer: asyncio.StreamWriter, opened: float) -> None:
        self.writer = writer
        self.opened = opened
        self.mids: set[int] = set()
        self.reader: asyncio.Task[None] | None = None
        self.retired = False  # takes no new queries; closes when the last one is answered

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


class TlsUpstream:
    def __init__(
        self,
        host: str,
        port: int,
        ctx: ssl.SSLContext,
        server_name: str,
        expire: float,
        max_age: float = 0.0,
        source: str | None = None,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.source = source
        self.on_connection = on_connection  # told, per query, whether a connection was reused
        self.ctx, self.server_name, self.expire = ctx, server_name, expire
        self.max_age = max_age  # forward's max_age: no new query on a connection this old
        self.opened = 0  # connections made, for tests and metrics
        self._conn: _Conn | None = None
        self._retired: set[_Conn] = set()
        self._pending: dict[int, tuple[Question, asyncio.Future[Message]]] = {}
        self._last_used = 0.0
        self._connecting: asyncio.Lock = asyncio.Lock()

    def _usable(self, conn: _Conn, now: float) -> bool:
        if conn.writer.is_closing():
            return False
        if self.max_age and now - conn.opened >= self.max_age:
            return False
        return bool(conn.mids) or now - self._last_used < self.expire

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        async with self._connecting:
            old = self._conn
            if old is not None and self._usable(old, loop.time()):
                if self.on_connection is not None:
                    self.on_connection(True)
                return old
            self._conn = None
            if old is not None:
                if old.mids and not old.writer.is_closing():
                    # Too old for new queries, but those in flight still get their replies.
                    old.retired = True
                    self._retired.add(old)
                else:
                    await old.close()
            try:
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.ctx,
                    server_hostname=self.server_name,
                    local_addr=None if self.source is None else (self.source, 0),
                )
            except ssl.SSLError as exc:
                raise ExchangeError(f"tls: {self.server_name}: {exc.reason or exc}") from exc
            except OSError as exc:
                raise ExchangeError(f"tls: {exc}") from exc
            self.opened += 1
            if self.on_connection is not None:
                self.on_connection(False)
            conn = _Conn(writer, loop.time())
            conn.reader = asyncio.create_task(self._read(conn, reader), name="dot reader")
            self._conn = conn
            return conn

    async def _read(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        error = "connection closed by upstream"
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                if len(data) < 2:
                    continue
                mid = struct.unpack_from("!H", data)[0]
                waiting = self._pending.get(mid) if mid in conn.mids else None
                if waiting is None:
                    continue
                msg = matches(data, mid, waiting[0])
                if msg is not None and not waiting[1].done():
                    waiting[1].set_result(msg)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            error = f"connection lost: {exc}"
        finally:
            for mid in conn.mids:
                fut = self._pending[mid][1]
                if not fut.done():
                    fut.set_exception(ExchangeError(f"tls: {error}"))
            conn.writer.close()

    async def exchange(self, question: Question, timeout: float) -> Message:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                conn = await self._connect()
                mid = new_id()
                while mid in self._pending:
                    mid = new_id()
                fut: asyncio.Future[Message] = loop.create_future()
                self._pending[mid] = (question, fut)
                conn.mids.add(mid)
                try:
                    query = encode(question, mid)
                    conn.writer.write(struct.pack("!H", len(query)) + query)
                    await conn.writer.drain()
                    return await fut
                finally:
                    del self._pending[mid]
                    conn.mids.discard(mid)
                    self._last_used = loop.time()
                    if conn.retired and not conn.mids:
                        self._retired.discard(conn)
                        await conn.close()
        except TimeoutError:
            raise ExchangeError(
                f"tls: no reply from {show(self.host, self.port)} in {timeout:g}s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise ExchangeError(f"tls: {exc}") from exc

    async def close(self) -> None:
        conns = [*self._retired, *([self._conn] if self._conn is not None else [])]
        self._conn = None
        self._retired.clear()
        for conn in conns:
            await conn.close()

"""DNS over TLS (RFC 7858) to one upstream: one persistent connection, queries pipelined.

Python's `ssl` does the TLS; certificate and server-name verification are on unless the Corefile
says otherwise. Every query on the connection carries its own random ID (none two in flight at
once); a reader task hands each reply to the query with that ID whose question it matches. The
connection is reopened when it has been idle longer than `expire` (forward's option, CoreDNS's
default 10s) or when the upstream closes it; a broken connection fails the queries in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct

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


class TlsUpstream:
    def __init__(
        self, host: str, port: int, ctx: ssl.SSLContext, server_name: str, expire: float
    ) -> None:
        self.host, self.port = host, port
        self.ctx, self.server_name, self.expire = ctx, server_name, expire
        self.opened = 0  # connections made, for tests and metrics
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, tuple[Question, asyncio.Future[Message]]] = {}
        self._last_used = 0.0
        self._connecting: asyncio.Lock = asyncio.Lock()

    def _usable(self, now: float) -> bool:
        w = self._writer
        if w is None or w.is_closing():
            return False
        return bool(self._pending) or now - self._last_used < self.expire

    async def _connect(self) -> asyncio.StreamWriter:
        loop = asyncio.get_running_loop()
        async with self._connecting:
            if self._writer is not None and self._usable(loop.time()):
                return self._writer
            await self.close()
            try:
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ctx, server_hostname=self.server_name
                )
            except ssl.SSLError as exc:
                raise ExchangeError(f"tls: {self.server_name}: {exc.reason or exc}") from exc
            except OSError as exc:
                raise ExchangeError(f"tls: {exc}") from exc
            self.opened += 1
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader), name="dot reader")
            return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        error = "connection closed by upstream"
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                if len(data) < 2:
                    continue
                mid = struct.unpack_from("!H", data)[0]
                waiting = self._pending.get(mid)
                if waiting is None:
                    continue
                msg = matches(data, mid, waiting[0])
                if msg is not None and not waiting[1].done():
                    waiting[1].set_result(msg)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            error = f"connection lost: {exc}"
        finally:
            for _, fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ExchangeError(f"tls: {error}"))
            if self._writer is not None:
                self._writer.close()

    async def exchange(self, question: Question, timeout: float) -> Message:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                writer = await self._connect()
                mid = new_id()
                while mid in self._pending:
                    mid = new_id()
                fut: asyncio.Future[Message] = loop.create_future()
                self._pending[mid] = (question, fut)
                try:
                    query = encode(question, mid)
                    writer.write(struct.pack("!H", len(query)) + query)
                    await writer.drain()
                    return await fut
                finally:
                    del self._pending[mid]
                    self._last_used = loop.time()
        except TimeoutError:
            raise ExchangeError(
                f"tls: no reply from {show(self.host, self.port)} in {timeout:g}s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise ExchangeError(f"tls: {exc}") from exc

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
            self._reader_task = None

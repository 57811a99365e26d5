"""TCP listener: 2-byte length framing, pipelined queries, idle timeout, bounded connections.

Queries on one connection are answered concurrently (RFC 7766 allows out-of-order replies), up
to a per-connection limit; a connection idle past the timeout is closed, and connections beyond
`max_connections` are closed at once so they cannot starve well-behaved clients. A query may be
answered with several messages (a zone transfer): `serve` appends those after the first to the
`more` list it is given, and they are written back to back, before any other reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Coroutine
from typing import Any, Protocol

from kdns.transport.udp import client_ip

log = logging.getLogger("kdns.tcp")


class Serve(Protocol):
    """Bytes of a query in, bytes of the reply out (None: no reply); the messages that follow
    the reply, if any, appended to `more`."""

    def __call__(
        self, data: bytes, proto: str, client: str, port: int, /, more: list[bytes] | None = None
    ) -> Coroutine[Any, Any, bytes | None]: ...


IDLE_TIMEOUT = 10.0
MAX_CONNECTIONS = 1000
PER_CONNECTION_INFLIGHT = 32


class TcpListener:
    def __init__(
        self,
        serve: Serve,
        idle_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.serve = serve
        self.idle_timeout = IDLE_TIMEOUT if idle_timeout is None else idle_timeout
        self.max_connections = MAX_CONNECTIONS if max_connections is None else max_connections
        self.connections = 0
        self.rejected = 0
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self, host: str | None, port: int, tls: ssl.SSLContext | None = None) -> None:
        """Listen; with `tls`, every connection is DNS over TLS (RFC 7858)."""
        self.server = await asyncio.start_server(
            self._connection,
            host=host,
            port=port,
            reuse_address=True,
            backlog=1024,
            ssl=tls,
            ssl_handshake_timeout=self.idle_timeout if tls is not None else None,
        )

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.max_connections:
            self.rejected += 1
            writer.close()
            return
        self.connections += 1
        self._writers.add(writer)
        peer = writer.get_extra_info("peername") or ("", 0)
        client, port = client_ip(str(peer[0])), int(peer[1])
        lock = asyncio.Lock()
        slots = asyncio.Semaphore(PER_CONNECTION_INFLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        head = await reader.readexactly(2)
                        (length,) = struct.unpack("!H", head)
                        data = await reader.readexactly(length)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    break
                await slots.acquire()
                self._inflight += 1
                self._idle.clear()
                task = asyncio.ensure_future(self._answer(data, client, port, writer, lock, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.connections -= 1
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(
        self,
        data: bytes,
        client: str,
        port: int,
        writer: asyncio.StreamWriter,
        lock: asyncio.Lock,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            more: list[bytes] = []
            out = await self.serve(data, "tcp", client, port, more)
            if out is not None and not writer.is_closing():
                async with lock:
                    for message in (out, *more):
                        writer.write(struct.pack("!H", len(message)) + message)
                        # A client that stops reading must not pin the connection forever.
                        async with asyncio.timeout(self.idle_timeout):
                            await writer.drain()
        except TimeoutError:
            writer.close()
        except (ConnectionError, RuntimeError):
            pass
        except Exception:
            log.exception("tcp: failed to answer a query")
        finally:
            slots.release()
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def drain(self) -> None:
        await self._idle.wait()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self._writers):
            w.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

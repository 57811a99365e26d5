"""A DNS-over-TLS upstream on loopback for tests: certificates from a throwaway trustme CA;
queries on one connection are answered concurrently (a name starting with `slow` waits), so
pipelining and out-of-order replies are exercised."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rrset
import trustme


@dataclass
class DotUpstream:
    port: int = 0
    connections: int = 0
    received: list[str] = field(default_factory=list)
    edns: list[tuple[int, int]] = field(default_factory=list)  # (payload, flags) per query
    slow: float = 0.3

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        tasks: set[asyncio.Task[None]] = set()
        lock = asyncio.Lock()

        async def answer(wire: bytes) -> None:
            query = dns.message.from_wire(wire)
            qname = query.question[0].name.to_text()
            self.received.append(qname)
            self.edns.append((query.payload, query.ednsflags) if query.edns >= 0 else (-1, 0))
            if qname.startswith("slow"):
                await asyncio.sleep(self.slow)
            resp = dns.message.make_response(query)
            resp.answer.append(dns.rrset.from_text(qname, 60, "IN", "A", "192.0.2.53"))
            out = resp.to_wire()
            async with lock:
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()

        try:
            while True:
                head = await reader.readexactly(2)
                wire = await reader.readexactly(struct.unpack("!H", head)[0])
                task = asyncio.create_task(answer(wire))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@dataclass
class Pki:
    ca: Path  # PEM of the CA that signed the upstream's certificate
    other_ca: Path  # a CA that signed nothing the upstream shows


def pki(directory: Path, names: tuple[str, ...]) -> tuple[ssl.SSLContext, Pki]:
    """A server context with a certificate for `names` from a fresh CA, and the CA files."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(directory / "other-ca.pem"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(server_ctx)
    return server_ctx, Pki(directory / "ca.pem", directory / "other-ca.pem")


@contextlib.asynccontextmanager
async def dot_upstream(
    directory: Path, names: tuple[str, ...] = ("dns.example.test",)
) -> AsyncIterator[tuple[DotUpstream, Pki]]:
    server_ctx, files = pki(directory, names)
    up = DotUpstream()
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0, ssl=server_ctx)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up, files
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()

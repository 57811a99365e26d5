"""A steady query load for tests that change the server underneath it (reload, shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import dns.exception

from tests.support.client import ask


@dataclass
class Load:
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # last rdata/ttl seen, per reply


@contextlib.asynccontextmanager
async def steady_load(
    port: int, qname: str, *, workers: int = 4, tcp_every: int = 5
) -> AsyncIterator[Load]:
    """Keep `workers` clients querying `qname` back to back until the block ends."""
    load = Load()
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            tcp = (i + n) % tcp_every == 0
            try:
                reply = await ask(port, qname, "A", tcp=tcp, timeout=2.0)
            except (dns.exception.DNSException, OSError) as exc:
                load.failed.append(f"{'tcp' if tcp else 'udp'}: {type(exc).__name__} {exc}")
                continue
            if reply.rcode() != 0 or not reply.answer:
                load.failed.append(f"rcode {reply.rcode()} answer {reply.answer}")
                continue
            load.ok += 1
            load.answers.append(str(reply.answer[0].ttl))

    tasks = [asyncio.create_task(worker(n)) for n in range(workers)]
    try:
        yield load
    finally:
        stop.set()
        await asyncio.gather(*tasks)

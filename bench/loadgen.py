"""Helpers shared by the benchmark scripts: a paced UDP query load with latency figures, and
reading a process's resident memory.

The load sends queries from one socket at a fixed rate, matches replies by message ID, and
records each reply's latency; a query not answered within `timeout` counts as lost. It is
plain asyncio so it runs anywhere the tests run (no dnsperf needed).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":")
            out[key] = int(value.split()[0])
    return out


def encode_query(name: str, qtype: int = 1, qid: int = 0) -> bytes:
    """A plain RD query for `name` (no EDNS), as a stub resolver sends it."""
    labels = b"".join(
        bytes([len(part)]) + part.encode() for part in name.rstrip(".").split(".") if part
    )
    return (
        struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


@dataclass
class LoadResult:
    sent: int = 0
    answered: int = 0
    lost: int = 0
    rcodes: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds
    seconds: float = 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    def summary(self) -> str:
        if not self.latencies:
            return f"sent {self.sent}, answered 0, lost {self.lost}"
        return (
            f"sent {self.sent}, answered {self.answered} ({self.answered / self.seconds:.0f}/s), "
            f"lost {self.lost}; latency p50 {self.percentile(0.5) * 1000:.2f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.2f} ms, "
            f"max {max(self.latencies) * 1000:.1f} ms, "
            f"mean {statistics.fmean(self.latencies) * 1000:.2f} ms; rcodes {self.rcodes}"
        )


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, pending: dict[int, float], result: LoadResult) -> None:
        self.pending = pending
        self.result = result

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        qid = struct.unpack_from("!H", data)[0]
        sent = self.pending.pop(qid, None)
        if sent is None:
            return
        self.result.answered += 1
        self.result.latencies.append(time.perf_counter() - sent)
        rcode = data[3] & 0xF
        self.result.rcodes[rcode] = self.result.rcodes.get(rcode, 0) + 1


async def udp_load(
    port: int,
    names: Sequence[tuple[str, int]],
    qps: float,
    seconds: float,
    *,
    host: str = "127.0.0.1",
    timeout: float = 2.0,
    stop: asyncio.Event | None = None,
) -> LoadResult:
    """Send `qps` queries a second, cycling through `names` ((name, qtype)), for `seconds`."""
    loop = asyncio.get_running_loop()
    result = LoadResult()
    pending: dict[int, float] = {}
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Proto(pending, result), remote_addr=(host, port)
    )
    wires = [encode_query(n, t) for n, t in names]
    ids = list(range(65536))
    random.shuffle(ids)
    start = time.perf_counter()
    tick = 0.01
    i = 0
    try:
        while time.perf_counter() - start < seconds and not (stop and stop.is_set()):
            due = int((time.perf_counter() - start) * qps)
            while result.sent < due:
                qid = ids[i % 65536]
                i += 1
                stale = pending.pop(qid, None)
                if stale is not None:
                    result.lost += 1  # its ID came round again: it was never answered
                w = wires[result.sent % len(wires)]
                pending[qid] = time.perf_counter()
                transport.sendto(struct.pack("!H", qid) + w[2:])
                result.sent += 1
            now = time.perf_counter()
            for qid, sent in list(pending.items()):
                if now - sent > timeout:
                    del pending[qid]
                    result.lost += 1
            await asyncio.sleep(tick)
        deadline = time.perf_counter() + timeout
        while pending and time.perf_counter() < deadline:  # noqa: ASYNC110 (replies fill it)
            await asyncio.sleep(tick)
        result.lost += len(pending)
    finally:
        transport.close()
    result.seconds = time.perf_counter() - start
    return result

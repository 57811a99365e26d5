"""Where the microseconds of one answered query go, measured in-process (no sockets).

Builds the server from a Corefile and a snapshot exactly as `kdns serve` does, answers each
query of a query file once through the full path, then times the fast path (`fast_answer`) and
the full path (`Dispatcher.serve`) per query, and a few of their parts.

    python bench/hot_path.py --conf /tmp/kdns-perf/kdns/Corefile --queries /tmp/kdns-perf/q-a.txt
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdns.config import load  # noqa: E402
from kdns.dns import records, wire  # noqa: E402
from kdns.server.app import App  # noqa: E402


def queries(path: Path) -> list[bytes]:
    out = []
    for i, line in enumerate(path.read_text().split("\n")):
        parts = line.split()
        if len(parts) == 2:
            out.append(wire.encode_query(parts[0], records.type_from_text(parts[1]), i & 0xFFFF,
                                         edns_size=None))
    return out


def per_call(fn, items: list[bytes], rounds: int) -> float:  # type: ignore[no-untyped-def]
    best = []
    for _ in range(rounds):
        t = time.perf_counter()
        for q in items:
            fn(q)
        best.append((time.perf_counter() - t) / len(items) * 1e6)
    return min(best)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conf", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    app = App(load(args.conf))
    await app.activate(app.config)
    inst = app.instance
    assert inst is not None
    key, dispatcher = next(iter(inst.dispatchers.items()))
    listener = app.listeners[key]
    qs = queries(Path(args.queries))
    for _ in range(2):  # full path twice: a query is kept for the fast path on its second ask
        for q in qs:
            await dispatcher.serve(q, "udp", "127.0.0.1", 5353)
    served = sum(1 for q in qs if dispatcher.fast_answer(q) is not None)
    print(f"{len(qs)} queries, {served} served from the fast path")
    fast = listener.udp.fast if listener.udp is not None else None
    assert fast is not None
    print(f"fast path (what the UDP loop calls): {per_call(fast, qs, args.rounds):.2f} us/query")
    t_full = []
    for _ in range(args.rounds):
        dispatcher.fastpath.clear()
        t = time.perf_counter()
        for q in qs:
            await dispatcher.serve(q, "udp", "127.0.0.1", 5353)
        t_full.append((time.perf_counter() - t) / len(qs) * 1e6)
    print(f"full path (Dispatcher.serve): {min(t_full):.1f} us/query "
          f"(median {statistics.median(t_full):.1f})")
    t = per_call(lambda q: wire.decode_query(q, "udp", "127.0.0.1", 1), qs, args.rounds)
    print(f"  decode_query: {t:.1f}")
    await app.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

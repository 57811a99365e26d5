"""Where the microseconds of one answered query go, measured in-process (no sockets).

Builds the server from a Corefile and a snapshot exactly as `kdns serve` does, answers each
query of a query file once through the full path, then times the fast path (`fast_answer`) and
the full path (`Dispatcher.serve`) per query, and a few of their parts.

    python bench/hot_path.py --conf /tmp/kdns-perf/kdns/Corefile --queries /tmp/kdns-perf/q-a.txt

With `--cold QFILE` (a file of names asked once, e.g. /tmp/kdns-perf/q-uniq.txt) it also breaks
the full path of a name asked once into its steps, each timed on names not asked before (CPU
time per query, the best of `--rounds` slices):

    python bench/hot_path.py --conf /tmp/kdns-perf/kdns/Corefile --queries /tmp/kdns-perf/q-a.txt \
        --cold /tmp/kdns-perf/q-uniq.txt
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
from kdns.plugins import memo  # noqa: E402
from kdns.server.app import App  # noqa: E402


def queries(path: Path, limit: int | None = None) -> list[bytes]:
    out = []
    with path.open() as f:
        if limit:
            lines = [line for _, line in zip(range(limit), f, strict=False)]
        else:
            lines = f.read().split("\n")
    for i, line in enumerate(lines):
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
    ap.add_argument("--cold", help="a file of names asked once: break their full path down")
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
    if args.cold:
        await cold_steps(app, dispatcher, listener, Path(args.cold), args.rounds)
    await app.shutdown()


async def cold_steps(  # type: ignore[no-untyped-def]
    app, dispatcher, listener, path: Path, rounds: int
) -> None:
    """The full path of names asked once, step by step (each step on fresh names)."""
    size = 2000
    qs = queries(path, size * (3 * rounds + 2))
    chunks = [qs[i : i + size] for i in range(size * 2, len(qs), size)]
    for q in qs[: size * 2]:  # warm up: the cache and the doorkeepers fill as in a long run
        await dispatcher.serve(q, "udp", "127.0.0.1", 5353)
    rows: dict[str, list[float]] = {}

    def clock(step: str, t0: float, n: int) -> None:
        rows.setdefault(step, []).append((time.process_time() - t0) / n * 1e6)

    udp = listener.udp
    for r in range(rounds):
        fresh = chunks[3 * r]
        t0 = time.process_time()
        reqs = [wire.decode_query(q, "udp", "127.0.0.1", 5353) for q in fresh]
        clock("decode_query", t0, len(fresh))
        t0 = time.process_time()
        done = []
        for q, req in zip(fresh, reqs, strict=True):
            note = memo.Memo()
            token = memo.current.set(note)
            reply, zone = await dispatcher._handle(req)
            memo.current.reset(token)
            done.append((q, req, reply, zone, note))
        clock("route + plugin chain", t0, len(fresh))
        t0 = time.process_time()
        encoded = []
        for _q, req, reply, _zone, _note in done:
            spans: list[wire.Span] = []
            encoded.append(wire.encode_spans(req, reply, spans))
        clock("encode", t0, len(fresh))
        t0 = time.process_time()
        for (q, req, reply, zone, note), out in zip(done, encoded, strict=True):
            dispatcher.fastpath.store(q, out, note, [], (req, reply, zone, note.credit))
            for obs in dispatcher.observers:
                obs(req, reply, zone, 0.0, len(out))
        clock("fast-path admission + metrics", t0, len(fresh))
        t0 = time.process_time()
        for q in chunks[3 * r + 1]:
            await dispatcher.serve(q, "udp", "127.0.0.1", 5353)
        clock("= Dispatcher.serve (all of the above)", t0, size)
        if udp is not None:
            t0 = time.process_time()
            for q in chunks[3 * r + 2]:
                udp._full_path(q, ("127.0.0.1", 5353))
            clock("= UDP full path (eager run, address)", t0, size)
    print("\ncold path, names asked once (CPU us per query, best of rounds):")
    print("| step | us/query |\n|---|---|")
    for step, values in rows.items():
        print(f"| {step} | {min(values):.1f} |")


if __name__ == "__main__":
    asyncio.run(main())

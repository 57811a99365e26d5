"""What the names a cluster asks all day cost in memory once answered, measured in process.

Builds the server from a Corefile and a snapshot exactly as `kdns serve` does, then answers
every query of the query files `--times` times through the dispatcher (the fast path first, as
the UDP loop does), and prints what was allocated meanwhile (tracemalloc, by source line), the
number of entries in the fast path and in each cache tier, and the bytes per stored name.

    python bench/stored_memory.py --conf /tmp/k10/kdns/Corefile \
        --queries /tmp/k10/q-a.txt /tmp/k10/q-srvptr.txt

With `--rss` it skips tracemalloc (which costs memory of its own) and prints VmRSS before and
after, and how long the periodic full collection (`heap.collect_all`) then takes: the pause
every query sees once every `heap.FULL_INTERVAL` seconds, which grows with the objects the
collector tracks. `--once FILE...` asks those files' queries once each, after the rest (names
asked once: the cache's tiers fill with them, the fast path does not).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hot_path import queries

from kdns import heap
from kdns.config import load
from kdns.plugins.cache.plugin import CachePlugin
from kdns.server.app import App


def rss() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conf", required=True)
    ap.add_argument("--queries", required=True, nargs="+")
    ap.add_argument("--times", type=int, default=3)
    ap.add_argument("--once", nargs="*", default=[], help="query files asked once, after")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--rss", action="store_true", help="VmRSS only (no tracemalloc)")
    args = ap.parse_args()
    app = App(load(args.conf))
    await app.activate(app.config)
    inst = app.instance
    assert inst is not None
    dispatcher = next(iter(inst.dispatchers.values()))
    # Each file's distinct queries (the ID left out, as the fast path's key does), asked in
    # turn `--times` times, one file after the other as dnsperf's mixes are.
    files = [list(dict.fromkeys(b"\0\0" + q[2:] for q in queries(Path(p)))) for p in args.queries]
    once = [queries(Path(p)) for p in args.once]
    qs = list(dict.fromkeys(q for f in files for q in f))
    gc.collect()
    rss_before = rss()
    if not args.rss:
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
    for f in files:
        for _ in range(args.times):
            for q in f:
                if dispatcher.fast_answer(q) is None:
                    await dispatcher.serve(q, "udp", "127.0.0.1", 5353)
    for f in once:
        for q in f:
            if dispatcher.fast_answer(q) is None:
                await dispatcher.serve(q, "udp", "127.0.0.1", 5353)
    dispatcher.fastpath.flush()
    gc.collect()
    caches = [p for p in inst.plugins if isinstance(p, CachePlugin)]
    tiers = {str(k): len(s) for c in caches for k, s in c.stores.items()}
    fast = len(dispatcher.fastpath.entries)
    print(f"{len(qs)} distinct queries asked {args.times} times")
    print(f"fast path entries {fast}; cache entries {tiers}")
    print(f"VmRSS {rss_before:.1f} -> {rss():.1f} MiB")
    if args.rss:
        pauses = []
        for _ in range(3):
            start = time.perf_counter()
            heap.collect_all()
            pauses.append((time.perf_counter() - start) * 1e3)
        gc.unfreeze()
        tracked = len(gc.get_objects())
        gc.freeze()
        print(f"full collection: {tracked} tracked objects, {min(pauses):.0f} ms (best of 3)")
        await app.shutdown()
        return
    after = tracemalloc.take_snapshot()
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"allocated and kept: {total / 2**20:.1f} MiB, {total / max(1, len(qs)):.0f} B a name")
    for s in stats[: args.top]:
        print(f"  {s.size_diff / 2**20:7.2f} MiB {s.count_diff:8d}  {s.traceback}")
    await app.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

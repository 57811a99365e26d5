"""In-process cost of `IndexBuilder.publish()` and of index lookups at cluster scale.

Builds an index of N Services (every 10th headless) with one EndpointSlice of E endpoints
each from slim objects, then times `publish()` after each of 200 single-slice changes, and
compares `get` on the published maps with `get` on a plain dict copy of them.

    python bench/index_publish.py                 # 10 000 services, 10 endpoints each
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdns.cluster.index import IndexBuilder
from kdns.cluster.objects import Port, Service, Slice, endpoints

PORTS = (Port("http", 80, "tcp"),)


def ip(i: int, j: int) -> str:
    n = i * 64 + j
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def slice_of(i: int, per: int, first: str | None = None) -> Slice:
    ips = [first or ip(i, 0)] + [ip(i, j) for j in range(1, per)]
    ns, name = f"ns{i % 10}", f"svc-{i:05d}"
    eps = tuple(endpoints((ns, name), PORTS, ips))
    return Slice(ns, f"{name}-a", name, "IPv4", eps, PORTS, None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--endpoints-per-service", type=int, default=10)
    args = p.parse_args()
    per = args.endpoints_per_service

    builder = IndexBuilder()
    started = time.perf_counter()
    gc.disable()
    for i in range(args.services):
        headless = i % 10 == 0
        cips = () if headless else (f"172.16.{(i >> 8) & 255}.{i & 255}",)
        svc = Service(
            f"ns{i % 10}", f"svc-{i:05d}", "ClusterIP", cips, headless, "", PORTS, False, ()
        )
        builder.upsert(svc)
        builder.upsert(slice_of(i, per))
    index = builder.publish()
    gc.enable()
    print(f"first build + publish: {time.perf_counter() - started:.2f} s")

    costs = []
    for n in range(200):
        i = (n * 7919) % args.services
        builder.upsert(slice_of(i, per, f"10.250.{(n >> 8) & 255}.{n & 255}"))
        t = time.perf_counter()
        index = builder.publish()
        costs.append(time.perf_counter() - t)
    costs.sort()
    print(
        f"publish after one slice change: p50 {costs[100] * 1e3:.3f} ms, "
        f"p99 {costs[198] * 1e3:.3f} ms, max {costs[-1] * 1e3:.3f} ms"
    )

    keys = [(f"ns{i % 10}", f"svc-{i:05d}") for i in range(args.services)]
    ips = [ip(i, 1) for i in range(args.services)]
    for name, published, probe in (
        ("services", index.services, keys),
        ("endpoint_ip_owners", index.endpoint_ip_owners, ips),
    ):
        timings = []
        for m in (published, dict(published)):
            get = m.get
            t = time.perf_counter()
            for _ in range(10):
                for k in probe:
                    get(k)
            timings.append((time.perf_counter() - t) / len(probe) / 10 * 1e9)
        print(f"{name}.get: {timings[0]:.0f} ns (plain dict: {timings[1]:.0f} ns)")


if __name__ == "__main__":
    main()

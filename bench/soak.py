"""Soak: a steady query load for a long time while endpoints churn; resident memory must stay flat.

Three processes on loopback: the fake API server of the tests (tests/support/fakeapi.py) with
generated Services and EndpointSlices, kdns (`python -m kdns serve`) with the live Kubernetes
source, cache and loadbalance, and this driver. The driver
- sends a steady load with dnsperf (installed with apt when missing and running as root) or,
  without it, with the asyncio client of bench/loadgen.py: A queries for ClusterIP and headless
  Services, AAAA (no data), SRV, and search-path misses (NXDOMAIN);
- churns endpoints through the fake API (`--churn-rate` EndpointSlice changes a second, and
  every 20th change deletes a Service and creates another);
- samples VmRSS of kdns every `--sample` seconds and reports start, end, max and the slope of a
  least-squares line through the samples after the first minute (warm-up).

    python bench/soak.py                          # 10 minutes, 2000 qps, 5 changes/s
    python bench/soak.py --duration 60 --qps 500  # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from k8s_scale import cpu_seconds, generate, slice_obj  # noqa: E402
from loadgen import rss_kib, udp_load  # noqa: E402

from tests.support.fakeapi import FakeApiServer, endpoint_slice, service  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

HEADLESS_EVERY = 4
PER_SERVICE = 3


# -- the fake API process ------------------------------------------------------------------------
async def serve_api(args: argparse.Namespace) -> None:
    from aiohttp import web

    api = FakeApiServer(bookmark_interval=30.0)
    api.load(generate(args.services, PER_SERVICE, HEADLESS_EVERY))
    api.port = args.api_port

    async def apply(request: web.Request) -> web.Response:
        return web.json_response({"rv": api.apply(await request.json())})

    async def delete(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"rv": api.delete(body["kind"], body["ns"], body["name"])})

    await api.up()
    ctl = web.Application()
    ctl.router.add_post("/apply", apply)
    ctl.router.add_post("/delete", delete)
    runner = web.AppRunner(ctl, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
    print("api ready", flush=True)
    # Bounded: the API process ends on its own even if the driver dies without stopping it.
    await asyncio.sleep(args.duration + 600)


# -- the driver ----------------------------------------------------------------------------------
def query_mix(services: int) -> list[tuple[str, int]]:
    mix: list[tuple[str, int]] = []
    for i in range(services):
        name = f"svc-{i:05d}.ns{i % 10}.svc.cluster.local."
        mix.append((name, 1))
        if i % 5 == 0:
            mix.append((name, 28))  # AAAA: no data
            mix.append((f"_http._tcp.{name}", 33))  # SRV
            mix.append((f"svc-{i:05d}.ns{i % 10}.svc.cluster.local.cluster.local.", 1))  # miss
    return mix


def dnsperf_path() -> str | None:
    found = shutil.which("dnsperf")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("dnsperf missing: installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dnsperf"], check=False, env=env)
    return shutil.which("dnsperf")


def parse_dnsperf(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, pattern in (
        ("sent", r"Queries sent:\s+(\d+)"),
        ("completed", r"Queries completed:\s+(\d+)"),
        ("lost", r"Queries lost:\s+(\d+)"),
        ("qps", r"Queries per second:\s+([\d.]+)"),
        ("avg_latency_ms", r"Average Latency \(s\):\s+([\d.]+)"),
    ):
        m = re.search(pattern, text)
        if m:
            value = float(m.group(1))
            out[key] = value * 1000 if key == "avg_latency_ms" else value
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        out["rcodes"] = m.group(1).strip()
    return out


def slope_mib_per_10min(samples: list[tuple[float, int]]) -> float:
    xs = [t for t, _ in samples]
    ys = [kib / 1024 for _, kib in samples]
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 600


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    import dns.asyncquery
    import dns.exception
    import dns.message

    dns_port = free_port()
    args.api_port = free_port()
    args.control_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    api_cmd = [sys.executable, __file__, "--role", "api", *sys.argv[1:]]
    api_cmd += ["--api-port", str(args.api_port), "--control-port", str(args.control_port)]
    api_proc = subprocess.Popen(api_cmd, stdout=subprocess.PIPE, env=env)  # noqa: ASYNC220
    assert api_proc.stdout is not None
    line = await asyncio.to_thread(api_proc.stdout.readline)
    assert b"api ready" in line, line

    work = Path(tempfile.mkdtemp(prefix="kdns-soak-"))
    (work / "Corefile").write_text(
        f""".:{dns_port} {{
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        endpoint http://127.0.0.1:{args.api_port}
        pods insecure
        ttl 30
    }}
    cache 30
    loadbalance
}}
"""
    )
    kdns_cmd = [sys.executable, "-m", "kdns", "--log-level", "warning", "serve"]
    kdns_proc = subprocess.Popen(  # noqa: ASYNC220
        [*kdns_cmd, "--conf", str(work / "Corefile")], cwd=ROOT, env=env
    )

    async def addresses(name: str) -> set[str]:
        q = dns.message.make_query(name, "A")
        try:
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=dns_port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            return set()
        return {rd.to_text() for rrset in r.answer for rd in rrset}

    report: dict[str, Any] = {"duration_s": args.duration, "target_qps": args.qps}
    try:
        last = args.services - 1
        ready_name = f"svc-{last:05d}.ns{last % 10}.svc.cluster.local."
        deadline = time.monotonic() + 120
        while not await addresses(ready_name):
            if time.monotonic() > deadline or kdns_proc.poll() is not None:
                raise SystemExit("kdns did not become ready")
            await asyncio.sleep(0.1)

        mix = query_mix(args.services)
        samples: list[tuple[float, int]] = []
        stop = asyncio.Event()
        changes = 0
        start = time.monotonic()
        cpu0 = cpu_seconds(kdns_proc.pid)

        async def sample() -> None:
            while not stop.is_set():
                samples.append((time.monotonic() - start, rss_kib(kdns_proc.pid)["VmRSS"]))
                t, kib = samples[-1]
                print(f"  t={t:5.0f}s RSS {kib / 1024:6.1f} MiB  changes {changes}", flush=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.sample)

        async def churn() -> None:
            nonlocal changes
            headless = range(0, args.services, HEADLESS_EVERY)
            async with aiohttp.ClientSession() as http:

                async def post(route: str, body: dict[str, Any]) -> None:
                    async with http.post(
                        f"http://127.0.0.1:{args.control_port}/{route}", data=json.dumps(body)
                    ) as resp:
                        await resp.read()

                n = 0
                while not stop.is_set():
                    i = headless[n % len(headless)]
                    ips = [f"10.250.{(n >> 8) & 255}.{n & 255}", f"10.251.{i >> 8}.{i & 255}"]
                    await post("apply", slice_obj(i, f"ns{i % 10}", ips))
                    if n % 20 == 0:
                        k = n // 20
                        if k:
                            for kind in ("Service", "EndpointSlice"):
                                await post(
                                    "delete", {"kind": kind, "ns": "ns0", "name": f"ch-{k - 1}"}
                                )
                        await post("apply", service(f"ch-{k}", "ns0", cluster_ip=None))
                        ips = [f"10.252.{(k >> 8) & 255}.{k & 255}"]
                        await post("apply", endpoint_slice(f"ch-{k}", f"ch-{k}", ips, "ns0"))
                    n += 1
                    changes = n
                    next_at = start + n / args.churn_rate
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))

        sampler = asyncio.create_task(sample())
        churner = asyncio.create_task(churn())
        perf = dnsperf_path() if not args.python_client else None
        if perf:
            qfile = work / "queries.txt"
            types = {1: "A", 28: "AAAA", 33: "SRV"}
            qfile.write_text("".join(f"{n} {types[t]}\n" for n, t in mix))
            cmd = [perf, "-s", "127.0.0.1", "-p", str(dns_port), "-d", str(qfile)]
            cmd += ["-l", str(int(args.duration)), "-Q", str(args.qps), "-c", "4", "-t", "2"]
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            out, _ = await proc.communicate()
            load = {"client": "dnsperf", **parse_dnsperf(out.decode())}
            if "completed" not in load:
                raise SystemExit(f"dnsperf failed:\n{out.decode()[-2000:]}")
        else:
            res = await udp_load(dns_port, mix, args.qps, args.duration)
            load = {
                "client": "python",
                "sent": res.sent,
                "completed": res.answered,
                "lost": res.lost,
                "qps": res.answered / res.seconds,
                "avg_latency_ms": sum(res.latencies) / max(1, len(res.latencies)) * 1000,
                "p99_latency_ms": res.percentile(0.99) * 1000,
                "rcodes": res.rcodes,
            }
        wall = time.monotonic() - start
        cpu = cpu_seconds(kdns_proc.pid) - cpu0
        stop.set()
        await asyncio.gather(sampler, churner)
        samples.append((time.monotonic() - start, rss_kib(kdns_proc.pid)["VmRSS"]))

        # The last change must be what kdns answers now: churn never left it incoherent.
        n = changes - 1
        headless = range(0, args.services, HEADLESS_EVERY)
        i = headless[n % len(headless)]
        want = {f"10.250.{(n >> 8) & 255}.{n & 255}", f"10.251.{i >> 8}.{i & 255}"}
        name = f"svc-{i:05d}.ns{i % 10}.svc.cluster.local."
        converged = False
        for _ in range(50):
            if await addresses(name) == want:
                converged = True
                break
            await asyncio.sleep(0.1)

        settled = [s for s in samples if s[0] >= 60] or samples
        report.update(
            load=load,
            endpoint_changes=changes,
            kdns_cpu_percent_of_one_core=round(100 * cpu / wall, 1),
            rss_start_mib=round(settled[0][1] / 1024, 1),
            rss_end_mib=round(samples[-1][1] / 1024, 1),
            rss_max_mib=round(max(k for _, k in samples) / 1024, 1),
            rss_first_sample_mib=round(samples[0][1] / 1024, 1),
            rss_slope_mib_per_10min=round(slope_mib_per_10min(settled), 2),
            samples=len(samples),
            final_state_converged=converged,
            vm_hwm_mib=round(rss_kib(kdns_proc.pid)["VmHWM"] / 1024, 1),
        )
        return report
    finally:
        kdns_proc.terminate()
        api_proc.terminate()
        kdns_proc.wait(10)
        api_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", choices=("driver", "api"), default="driver")
    p.add_argument("--duration", type=int, default=600, help="seconds of load")
    p.add_argument("--qps", type=int, default=2000)
    p.add_argument("--services", type=int, default=400)
    p.add_argument("--churn-rate", type=float, default=5.0, help="EndpointSlice changes per second")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    p.add_argument("--python-client", action="store_true", help="do not use dnsperf")
    p.add_argument("--json", type=Path, help="also write the report here")
    p.add_argument("--api-port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    args = p.parse_args()
    if args.role == "api":
        asyncio.run(serve_api(args))
        return
    report = asyncio.run(drive(args))
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Kubernetes source at scale: time to ready, RSS, event-to-answer latency, CPU under churn.

Three processes on loopback: the fake API server (tests/support/fakeapi.py) holding generated
objects, kdns (`python -m kdns serve`) with the live source pointed at it, and this driver,
which asks DNS questions with dnspython and tells the fake API what to change through a small
control route.

    python bench/k8s_scale.py --services 10000 --endpoints-per-service 10

Measured:
- ready: kdns process start -> the last headless service answers with its endpoints
  (every list of every resource is done by then);
- RSS of the kdns process (VmRSS once ready, VmHWM peak);
- event -> answer: the fake API emits a MODIFIED EndpointSlice (the control request returns
  after the event is queued to the watch) -> the new address is in kdns's DNS answer, polled
  back to back, for --changes changes spaced by --gap seconds (p50/p99); then again while
  the API streams --loaded-rate changes per second to other services;
- CPU of the kdns process while the API streams --rate slice changes per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fakeapi import FakeApiServer  # noqa: E402
from tests.support.ports import free_port  # noqa: E402


def ip(i: int, j: int) -> str:
    n = i * 64 + j
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def generate(services: int, per_service: int, headless_every: int) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [
        {"kind": "Namespace", "metadata": {"name": f"ns{k}"}} for k in range(10)
    ]
    for i in range(services):
        ns = f"ns{i % 10}"
        headless = i % headless_every == 0 or i == services - 1
        cip = "None" if headless else f"172.{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
        objs.append(
            {
                "kind": "Service",
                "metadata": {"name": f"svc-{i:05d}", "namespace": ns, "labels": {"app": f"a{i}"}},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": cip,
                    "clusterIPs": [cip],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                },
            }
        )
        objs.append(slice_obj(i, ns, [ip(i, j) for j in range(per_service)]))
    return objs


def slice_obj(i: int, ns: str, ips: list[str], trigger: str | None = None) -> dict[str, Any]:
    ann = {"endpoints.kubernetes.io/last-change-trigger-time": trigger} if trigger else {}
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"svc-{i:05d}-abcde",
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": f"svc-{i:05d}", "app": f"a{i}"},
            "annotations": ann,
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [a],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": f"node-{k % 50}",
                "targetRef": {"kind": "Pod", "name": f"svc-{i:05d}-pod-{k}", "namespace": ns},
            }
            for k, a in enumerate(ips)
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


# -- the fake API process ------------------------------------------------------------------------
async def serve_api(args: argparse.Namespace) -> None:
    from aiohttp import web

    api = FakeApiServer(bookmark_interval=30.0)
    api.load(generate(args.services, args.endpoints_per_service, args.headless_every))
    api.port = args.api_port

    async def control(request: web.Request) -> web.Response:
        body = await request.json()
        rv = api.apply(body)
        return web.json_response({"rv": rv})

    await api.up()
    ctl = web.Application()
    ctl.router.add_post("/apply", control)
    runner = web.AppRunner(ctl, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
    print("api ready", flush=True)
    await asyncio.Event().wait()


# -- the driver ----------------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) // 1024  # MiB
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(args: argparse.Namespace) -> None:
    import aiohttp
    import dns.asyncquery
    import dns.message

    dns_port = free_port()
    args.api_port = free_port()
    args.control_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    api_proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before measuring)
        [
            sys.executable,
            __file__,
            "--role",
            "api",
            *sys.argv[1:],
            "--api-port",
            str(args.api_port),
            "--control-port",
            str(args.control_port),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert api_proc.stdout is not None
    t0 = time.monotonic()
    line = await asyncio.to_thread(api_proc.stdout.readline)
    assert b"api ready" in line, line
    print(
        f"fake API: {args.services} services, {args.services * args.endpoints_per_service} "
        f"endpoints generated in {time.monotonic() - t0:.1f}s"
    )

    work = Path(tempfile.mkdtemp(prefix="kdns-bench-"))
    (work / "Corefile").write_text(
        f""".:{dns_port} {{
    bind 127.0.0.1
    kubernetes cluster.local {{
        endpoint http://127.0.0.1:{args.api_port}
        startup_timeout 60s
    }}
}}
"""
    )
    last = args.services - 1
    last_name = f"svc-{last:05d}.ns{last % 10}.svc.cluster.local"

    async def query(name: str) -> set[str]:
        q = dns.message.make_query(name, "A")
        try:
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=dns_port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            return set()
        return {rd.to_text() for rrset in r.answer for rd in rrset}

    start = time.monotonic()
    kdns_proc = subprocess.Popen(  # noqa: ASYNC220 (start time is part of the measure)
        [
            sys.executable,
            "-m",
            "kdns",
            "--log-level",
            "warning",
            "serve",
            "--conf",
            str(work / "Corefile"),
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = start + 300
        while len(await query(last_name)) != args.endpoints_per_service:
            if time.monotonic() > deadline or kdns_proc.poll() is not None:
                raise SystemExit("kdns did not become ready")
            await asyncio.sleep(0.02)
        ready = time.monotonic() - start
        mem = proc_status(kdns_proc.pid)
        print(f"ready after {ready:.2f}s; RSS {mem['VmRSS']} MiB (peak {mem['VmHWM']} MiB)")

        async with aiohttp.ClientSession() as http:
            ctl = f"http://127.0.0.1:{args.control_port}/apply"
            headless = [i for i in range(args.services) if i % args.headless_every == 0]
            measured = headless[: args.changes]
            others = sorted(set(range(args.services)) - set(measured))

            async def change(i: int, first_ip: str) -> None:
                ns = f"ns{i % 10}"
                ips = [first_ip] + [ip(i, j) for j in range(1, args.endpoints_per_service)]
                async with http.post(ctl, data=json.dumps(slice_obj(i, ns, ips))) as resp:
                    await resp.read()

            async def latencies(label: str, base: int) -> None:
                """Event -> answer, one change at a time on headless services."""
                lat: list[float] = []
                for n in range(args.changes):
                    await asyncio.sleep(args.gap)
                    i = measured[n % len(measured)]
                    m = base + n
                    new_ip = f"10.250.{(m >> 8) & 255}.{m & 255}"
                    await change(i, new_ip)
                    t_event = time.perf_counter()
                    name = f"svc-{i:05d}.ns{i % 10}.svc.cluster.local"
                    while new_ip not in await query(name):
                        if time.perf_counter() - t_event > 5:
                            raise SystemExit(f"change {n} not visible after 5 s")
                    lat.append(time.perf_counter() - t_event)
                lat.sort()
                p50 = statistics.median(lat) * 1000
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
                print(
                    f"event -> answer {label} over {len(lat)} changes: p50 {p50:.1f} ms, "
                    f"p99 {p99:.1f} ms, max {lat[-1] * 1000:.1f} ms"
                )

            async def churn(rate: float, stop: asyncio.Event) -> int:
                """Slice changes at `rate` per second on services the latency loop leaves alone."""
                w0 = time.monotonic()
                n = 0
                while not stop.is_set():
                    i = others[(n * 7919) % len(others)]
                    await change(i, f"10.251.{(n >> 8) & 255}.{n & 255}")
                    n += 1
                    await asyncio.sleep(max(0.0, w0 + n / rate - time.monotonic()))
                return n

            await latencies("(isolated changes)", 0)

            if args.loaded_rate > 0:
                stop = asyncio.Event()
                background = asyncio.create_task(churn(args.loaded_rate, stop))
                w0 = time.monotonic()
                await latencies(f"(with {args.loaded_rate:g} other changes/s)", args.changes)
                stop.set()
                n = await background
                print(f"  background: {n / (time.monotonic() - w0):.0f} changes/s achieved")

            # CPU under a steady stream of slice changes.
            cpu0, w0 = cpu_seconds(kdns_proc.pid), time.monotonic()
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(args.churn_seconds, stop.set)
            n = await churn(args.rate, stop)
            wall = time.monotonic() - w0
            cpu = cpu_seconds(kdns_proc.pid) - cpu0
            mem = proc_status(kdns_proc.pid)
            print(
                f"churn: {n} slice changes in {wall:.1f}s ({n / wall:.0f}/s): kdns CPU "
                f"{cpu:.2f}s = {100 * cpu / wall:.0f}% of one core; RSS {mem['VmRSS']} MiB "
                f"(peak {mem['VmHWM']} MiB)"
            )
    finally:
        kdns_proc.terminate()
        api_proc.terminate()
        kdns_proc.wait(10)
        api_proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", choices=("driver", "api"), default="driver")
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--endpoints-per-service", type=int, default=10)
    p.add_argument("--headless-every", type=int, default=10, help="every Nth service headless")
    p.add_argument("--changes", type=int, default=200)
    p.add_argument("--gap", type=float, default=0.1, help="pause between measured changes")
    p.add_argument("--rate", type=float, default=50.0, help="slice changes per second")
    p.add_argument("--churn-seconds", type=float, default=10.0)
    p.add_argument(
        "--loaded-rate",
        type=float,
        default=100.0,
        help="other slice changes per second while event -> answer is measured again (0: skip)",
    )
    p.add_argument("--api-port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    args = p.parse_args()
    asyncio.run(serve_api(args) if args.role == "api" else drive(args))


if __name__ == "__main__":
    main()

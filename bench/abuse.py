"""Abuse: TCP connection abuse and a UDP overload against a real kdns process; memory and the
latency of legitimate clients while it lasts.

kdns runs as `python -m kdns serve` on 127.0.0.1 (kubernetes from the bundled snapshot, cache,
loadbalance, prometheus). Each phase lasts `--seconds`; during every phase a legitimate UDP
client sends `--legit-qps` queries a second (bench/loadgen.py) and a legitimate TCP client asks
one query per fresh connection every 100 ms, while VmRSS of kdns is sampled every 0.5 s.

- baseline: nothing else;
- tcp: `--tcp-conns` connections (more than kdns's limit of 1000), a quarter each idle
  (connect, send nothing), slow (a query trickled one byte a second), half-closed (half a query,
  then FIN), and non-reading (a pipeline of queries whose replies are never read);
- udp: a flood process sends distinct names (every one misses the fast path and the cache) as
  fast as it can; the table shows how many it sent, how many kdns answered, and how the
  legitimate client fared.

    python bench/abuse.py                  # 30 s per phase
    python bench/abuse.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import encode_query, rss_kib, udp_load  # noqa: E402

from tests.support.ports import free_port  # noqa: E402

LEGIT = [("web.shop.svc.cluster.local.", 1), ("kubernetes.default.svc.cluster.local.", 1)]

FLOOD = """
import socket, struct, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
def q(i):
    name = f"flood-{i}.shop.svc.cluster.local"
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + labels + b"\\0\\0\\1\\0\\1"
packets = [q(i) for i in range(200000)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
print("ready", flush=True)
end = time.monotonic() + seconds
sent = 0
while time.monotonic() < end:
    for p in packets[sent % 200000 : sent % 200000 + 256]:
        try:
            s.sendto(p, ("127.0.0.1", port))
            sent += 1
        except BlockingIOError:
            time.sleep(0.0005)
print(sent, flush=True)
"""


# An experiment, not a setting: the UDP socket's receive buffer is fixed in kdns; this runs kdns
# with another size to show what the kernel queue costs in latency under overload.
RCVBUF_WRAPPER = """
import socket, sys
import kdns.transport.udp as udp
size = int(sys.argv.pop(1))
opened = udp.open_socket
def open_socket(host, port):
    sock = opened(host, port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return sock
udp.open_socket = open_socket
from kdns.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


async def scrape_requests(metrics: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", metrics)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    total = 0.0
    for line in body.splitlines():
        if line.startswith("coredns_dns_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def tcp_legit(port: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    failed = 0
    end = time.monotonic() + seconds
    wire = encode_query(LEGIT[0][0], 1, 4242)
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(2):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(struct.pack("!H", len(wire)) + wire)
                (n,) = struct.unpack("!H", await r.readexactly(2))
                reply = await r.readexactly(n)
                w.close()
            if reply[3] & 0xF != 0:
                failed += 1
            else:
                lat.append(time.perf_counter() - t0)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            failed += 1
        await asyncio.sleep(0.1)
    lat.sort()
    return {
        "tcp_ok": len(lat),
        "tcp_failed": failed,
        "tcp_p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
        "tcp_max_ms": round(lat[-1] * 1000, 2) if lat else None,
    }


async def sample_rss(pid: int, stop: asyncio.Event, out: list[int]) -> None:
    while not stop.is_set():
        out.append(rss_kib(pid)["VmRSS"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def abusive_tcp(port: int, count: int, seconds: float) -> dict[str, Any]:
    """Open `count` abusive connections and keep them abusing for `seconds`."""
    wire = encode_query(LEGIT[0][0], 1, 1)
    framed = struct.pack("!H", len(wire)) + wire
    socks: list[socket.socket] = []
    kinds = ("idle", "slow", "half-closed", "non-reading")
    refused = 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
        except OSError:
            refused += 1
            s.close()
            continue
        kind = kinds[i % 4]
        with contextlib.suppress(OSError):
            if kind == "half-closed":
                s.send(framed[: len(framed) // 2])
                s.shutdown(socket.SHUT_WR)
            elif kind == "non-reading":
                s.send(framed * 200)
        socks.append(s)
    slow = [s for i, s in enumerate(socks) if kinds[i % 4] == "slow"]
    end = time.monotonic() + seconds
    pos = 0
    while time.monotonic() < end:
        for s in slow:
            with contextlib.suppress(OSError):
                s.send(framed[pos % len(framed) : pos % len(framed) + 1])
        pos += 1
        await asyncio.sleep(1.0)
    # Which connections did kdns close (EOF or reset when we look)?
    closed = 0
    for s in socks:
        try:
            while True:
                if s.recv(65536) == b"":
                    closed += 1
                    break
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return {"opened": len(socks), "refused_at_connect": refused, "closed_by_kdns": closed}


async def phase(
    name: str, args: argparse.Namespace, port: int, metrics: int, pid: int
) -> dict[str, Any]:
    stop = asyncio.Event()
    rss: list[int] = []
    sampler = asyncio.create_task(sample_rss(pid, stop, rss))
    answered0 = await scrape_requests(metrics)
    extra: dict[str, Any] = {}
    flood = None
    abuse = None
    if name == "tcp":
        abuse = asyncio.create_task(abusive_tcp(port, args.tcp_conns, args.seconds))
        await asyncio.sleep(1.0)  # let the connections pile up before measuring
    if name == "udp":
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD, str(port), str(args.seconds + 1),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert flood.stdout is not None
        assert (await flood.stdout.readline()).strip() == b"ready"
    t0 = time.monotonic()
    legit_udp, legit_tcp = await asyncio.gather(
        udp_load(port, LEGIT, args.legit_qps, args.seconds - 1), tcp_legit(port, args.seconds - 1)
    )
    wall = time.monotonic() - t0
    if abuse is not None:
        extra.update(await abuse)
    if flood is not None:
        out, _ = await flood.communicate()
        extra["flood_sent"] = int(out.split()[-1])
        extra["flood_sent_per_s"] = round(extra["flood_sent"] / (args.seconds + 1))
    answered = await scrape_requests(metrics) - answered0
    stop.set()
    await sampler
    return {
        "phase": name,
        "kdns_answered_per_s": round(answered / wall),
        "legit_udp": {
            "sent": legit_udp.sent,
            "answered": legit_udp.answered,
            "lost": legit_udp.lost,
            "p50_ms": round(legit_udp.percentile(0.5) * 1000, 2),
            "p99_ms": round(legit_udp.percentile(0.99) * 1000, 2),
            "max_ms": round(max(legit_udp.latencies, default=0) * 1000, 2),
            "rcodes": legit_udp.rcodes,
        },
        **legit_tcp,
        **extra,
        "rss_start_mib": round(rss[0] / 1024, 1),
        "rss_max_mib": round(max(rss) / 1024, 1),
        "rss_end_mib": round(rss[-1] / 1024, 1),
        "rss_every_5s_mib": [round(k / 1024, 1) for k in rss[::10]],
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    work = Path(tempfile.mkdtemp(prefix="kdns-abuse-"))
    shutil.copy(ROOT / "examples" / "cluster.yaml", work / "cluster.yaml")
    port, metrics = free_port(), free_port()
    (work / "Corefile").write_text(f""".:{port} {{
    bind 127.0.0.1
    prometheus 127.0.0.1:{metrics}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        snapshot cluster.yaml
        pods insecure
        ttl 30
    }}
    cache 30
    loadbalance
}}
""")
    cmd = [sys.executable, "-m", "kdns"]
    if args.rcvbuf:
        cmd = [sys.executable, "-c", RCVBUF_WRAPPER, str(args.rcvbuf)]
    proc = subprocess.Popen(  # noqa: ASYNC220
        [*cmd, "--log-level", "warning", "serve", "--conf", "Corefile"],
        cwd=work,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            res = await udp_load(port, LEGIT, 20, 0.2, timeout=0.5)
            if res.answered:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("kdns did not start")
        results = []
        for name in args.phases:
            r = await phase(name, args, port, metrics, proc.pid)
            print(json.dumps(r), flush=True)
            results.append(r)
        return results
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--legit-qps", type=float, default=200.0)
    p.add_argument("--tcp-conns", type=int, default=1400)
    p.add_argument("--phases", nargs="+", default=["baseline", "tcp", "udp", "baseline"])
    p.add_argument("--rcvbuf", type=int, help="experiment: run kdns with this SO_RCVBUF")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    results = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

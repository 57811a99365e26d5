"""Resident memory of a `kdns serve` process, to size the Deployment's requests and limits.

Starts `kdns serve` as a separate process on 127.0.0.1, waits until it answers, sends a bounded
number of queries, then reads VmRSS (now) and VmHWM (peak) from /proc/PID/status.

The live Kubernetes source imports kubernetes-asyncio, and health/ready/metrics import aiohttp
and prometheus-client; with `--preload` those modules are imported before serving, so the
figure is what the deployed process carries even while the snapshot source stands in for the
API server. Cluster sizes are synthetic snapshots: N Services, each with one EndpointSlice of
3 endpoints, and 3N Pods.

    python bench/deployed_memory.py                      # bundled Corefile + snapshot
    python bench/deployed_memory.py --preload --services 0 1000 5000
    python bench/deployed_memory.py --preload --yaml --services 1000 5000   # YAML snapshot files
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

ROOT = Path(__file__).resolve().parent.parent
PRELOAD = (
    "kubernetes_asyncio.client",
    "kubernetes_asyncio.config",
    "kubernetes_asyncio.watch",
    "aiohttp.web",
    "prometheus_client",
    "uvloop",
)
PORT = 10653


def snapshot(services: int) -> dict[str, object]:
    items: list[dict[str, object]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
            },
        },
    ]
    for i in range(services):
        ip = f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256 or 1}"
        name = f"svc-{i}"
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "bench"},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": ip,
                    "clusterIPs": [ip],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                },
            }
        )
        endpoints = []
        for j in range(3):
            n = i * 3 + j
            pod_ip = f"172.{16 + n // 65536}.{(n // 256) % 256}.{n % 256}"
            endpoints.append({"addresses": [pod_ip], "conditions": {"ready": True}})
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"{name}-{j}", "namespace": "bench"},
                    "status": {"phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}]},
                }
            )
        items.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-abcde",
                    "namespace": "bench",
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}


def corefile(snapshot_path: str) -> str:
    return f"""\
.:{PORT} {{
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        snapshot {snapshot_path}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
}}
"""


def status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def measure(conf: Path, preload: bool, queries: int) -> dict[str, int]:
    code = "import sys\n"
    if preload:
        code += "".join(f"import {m}\n" for m in PRELOAD)
    code += f"from kdns.cli import main\nsys.exit(main(['serve', '--conf', {str(conf)!r}]))\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        q = dns.message.make_query("kubernetes.default.svc.cluster.local", "A")
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"kdns exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                dns.query.udp(q, "127.0.0.1", port=PORT, timeout=0.5)
                break
            except dns.exception.Timeout:
                if time.monotonic() > deadline:
                    raise SystemExit("kdns did not answer within 120 s") from None
        for i in range(queries):
            name = f"svc-{i}.bench.svc.cluster.local"
            dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=PORT, timeout=2)
        return status(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def index_only(services: int) -> dict[str, int]:
    """Build the cluster index in this process from API-shaped dicts, as the live source does.

    No YAML parse: the snapshot loader's PyYAML node graph inflates the serving figures above
    with a transient the live source never has.
    """
    import gc
    import importlib
    import os

    from kdns.cluster import objects
    from kdns.cluster.index import IndexBuilder

    for module in PRELOAD:
        importlib.import_module(module)
    before = status(os.getpid())["VmRSS"]
    data = snapshot(services)["items"]
    assert isinstance(data, list)
    by_kind: dict[str, list[object]] = {
        "Namespace": [],
        "Service": [],
        "EndpointSlice": [],
        "Pod": [],
    }
    convert = {
        "Namespace": objects.namespace_from,
        "Service": objects.service_from,
        "EndpointSlice": objects.slice_from,
        "Pod": objects.pod_from,
    }
    for item in data:
        by_kind[item["kind"]].append(convert[item["kind"]](item))
    del data, item
    builder = IndexBuilder()
    for kind, objs in by_kind.items():
        builder.replace_all(kind, objs)
        builder.mark_synced(kind)
    index = builder.publish()
    del by_kind
    gc.collect()
    after = status(os.getpid())["VmRSS"]
    assert index.synced
    return {"before": before, "after": after}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index-only", action="store_true", help="in-process index cost, no serving")
    p.add_argument("--preload", action="store_true", help="import the live-source modules too")
    p.add_argument("--services", type=int, nargs="*", help="synthetic cluster sizes")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--yaml", action="store_true", help="write the snapshot as YAML, not JSON")
    args = p.parse_args()
    if args.index_only:
        for n in args.services or (0,):
            f = index_only(n)
            print(
                f"{n} services: VmRSS {f['before']} MiB after imports, {f['after']} MiB with index"
            )
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs: list[tuple[str, Path]] = []
        if not args.services:
            text = (ROOT / "Corefile").read_text().replace(".:1053", f".:{PORT}")
            text = text.replace("examples/cluster.yaml", str(ROOT / "examples/cluster.yaml"))
            path = Path(tmp, "Corefile.bundled")
            path.write_text(text)
            runs.append(("bundled snapshot", path))
        for n in args.services or ():
            if args.yaml:
                import yaml

                snap = Path(tmp, f"cluster-{n}.yaml")
                snap.write_text(yaml.safe_dump(snapshot(n), default_flow_style=False))
            else:
                snap = Path(tmp, f"cluster-{n}.json")
                snap.write_text(json.dumps(snapshot(n)))
            path = Path(tmp, f"Corefile.{n}")
            path.write_text(corefile(str(snap)))
            runs.append((f"{n} services, {n} slices, {3 * n} pods", path))
        print(f"python {sys.version.split()[0]}, preload={args.preload}")
        for label, path in runs:
            figures = measure(path, args.preload, args.queries)
            print(f"{label:40s} VmRSS {figures['VmRSS']:4d} MiB  VmHWM {figures['VmHWM']:4d} MiB")


if __name__ == "__main__":
    main()

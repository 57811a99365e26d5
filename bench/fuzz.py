"""Wire fuzzing: a million random and mutated packets through the real query path, in-process.

Each worker process runs a full kdns App from a Corefile (kubernetes from the bundled snapshot,
errors, cache, loadbalance, and forward to a fake upstream on 127.0.0.1 that answers everything
it is asked) and feeds it packets exactly as the UDP and TCP listeners do: `fast_answer()` first
(the byte-level fast path), then `Dispatcher.serve()` (decode, route, plugin chain, encode).

Packets are random bytes, or real queries (cluster names, external names, PTR, SRV, EDNS with
options and cookies, upper case) mutated: bit flips, byte writes, truncation, junk appended,
label lengths corrupted, compression pointers (to themselves, forwards, into a loop), bad OPT
records (option length past the end, two OPTs, OPT in the answer section, a version above 0,
an owner name), random section counts, QR and opcode flips, splices of two packets.

Counted: exceptions that escape `fast_answer`/`serve` (must be 0), panics (the dispatcher's
catch-all turning a plugin exception into SERVFAIL, `coredns_panics_total`; must be 0), replies
that are not well-formed (wrong ID, QR clear, larger than the client allows, or rejected by
dnspython for every 50th reply).

    python bench/fuzz.py                      # 1,000,000 packets over 2 processes
    python bench/fuzz.py --packets 20000 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import random
import shutil
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COREFILE = """\
.:{port} {{
    bind 127.0.0.1
    errors
    prometheus 127.0.0.1:{metrics}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        snapshot cluster.yaml
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . 127.0.0.1:{upstream} {{
        max_concurrent 1000
    }}
    cache 30
    loadbalance
}}
cluster.local:{port} {{
    bind 127.0.0.2
    kubernetes {{
        snapshot cluster.yaml
    }}
    cache
}}
"""

SEED_NAMES = [
    ("web.shop.svc.cluster.local.", "A"),
    ("WEB.Shop.SVC.cluster.LOCAL.", "AAAA"),
    ("kubernetes.default.svc.cluster.local.", "A"),
    ("_https._tcp.kubernetes.default.svc.cluster.local.", "SRV"),
    ("kube-dns.kube-system.svc.cluster.local.", "SRV"),
    ("nope.shop.svc.cluster.local.", "A"),
    ("shop.svc.cluster.local.", "A"),
    ("10-1-0-5.shop.pod.cluster.local.", "A"),
    ("1.0.96.10.in-addr.arpa.", "PTR"),
    ("cluster.local.", "SOA"),
    ("cluster.local.", "NS"),
    ("www.example.org.", "A"),
    ("a.example.org.", "AAAA"),
    ("example.org.", "MX"),
    ("x.example.org.", "TXT"),
    ("web.shop.svc.cluster.local.shop.svc.cluster.local.", "A"),
    (".", "NS"),
    ("any.example.", "ANY"),
]


def seeds() -> list[bytes]:
    import dns.edns
    import dns.flags
    import dns.message

    out: list[bytes] = []
    for name, rtype in SEED_NAMES:
        for edns, opts in (
            (None, None),
            (0, None),
            (0, [dns.edns.GenericOption(10, b"\x01" * 8)]),  # a client cookie
            (0, [dns.edns.ECSOption("192.0.2.0", 24)]),
            (0, [dns.edns.GenericOption(65001, b"")]),
        ):
            q = dns.message.make_query(
                name, rtype, use_edns=edns if edns is not None else False, options=opts
            )
            out.append(q.to_wire())
            q.flags |= dns.flags.CD
            q.ednsflags |= dns.flags.DO if edns is not None else 0
            out.append(q.to_wire())
    return out


# -- mutations -------------------------------------------------------------------------------------
def _label_offsets(data: bytes) -> list[int]:
    offs, off = [], 12
    while off < len(data) and data[off] and not data[off] & 0xC0 and len(offs) < 64:
        offs.append(off)
        off += 1 + data[off]
    return offs


def mutate(rng: random.Random, base: bytes, other: bytes) -> bytes:
    if len(base) < 13 or len(other) < 1:  # stacked mutations may leave too little to work on
        return base + rng.randbytes(rng.randrange(20))
    data = bytearray(base)
    kind = rng.randrange(16)
    if kind == 0:  # bit flips
        for _ in range(rng.randrange(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # random byte writes
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:  # truncation anywhere
        del data[rng.randrange(len(data)) :]
    elif kind == 3:  # junk appended
        data += rng.randbytes(rng.randrange(1, 300))
    elif kind == 4:  # a label length corrupted (too long, zero, pointer bits)
        offs = _label_offsets(bytes(data))
        if offs:
            data[rng.choice(offs)] = rng.choice([0, 63, 64, 127, 191, 255, rng.randrange(256)])
    elif kind == 5:  # a compression pointer in the name: to itself, forward, or a loop
        offs = _label_offsets(bytes(data)) or [12]
        at = rng.choice(offs)
        target = rng.choice([at, at + 2, 12, rng.randrange(0x4000), len(data) + 10])
        data[at : at + 2] = struct.pack("!H", 0xC000 | (target & 0x3FFF))
    elif kind == 6:  # a pointer loop in an extra record's owner name
        data[10:12] = struct.pack("!H", (struct.unpack_from("!H", data, 10)[0] + 1) & 0xFFFF)
        here = len(data)
        data += struct.pack("!H", 0xC000 | here) + struct.pack("!HHIH", 1, 1, 0, 0)
    elif kind == 7:  # an OPT whose option runs past the end
        data[10:12] = b"\x00\x01" if data[11] == 0 else data[10:12]
        if data[11] == 1 and not base[11]:
            data += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 8) + struct.pack("!HH", 10, 200)
            data += rng.randbytes(4)
        else:
            data[-2:] = b"\x00\xff"
    elif kind == 8:  # two OPT records, or one with an owner name or version > 0
        opt = struct.pack("!HHIH", 41, rng.randrange(65536), rng.randrange(1 << 32), 0)
        owner = rng.choice([b"\x00", b"\x01a\x00", b"\xc0\x0c"])
        data += owner + opt
        data[10:12] = struct.pack("!H", (struct.unpack_from("!H", data, 10)[0] + 1) & 0xFFFF)
    elif kind == 9:  # OPT moved to the answer section
        data[6:12] = struct.pack("!HHH", data[11], 0, 0) if data[11] else data[6:12]
    elif kind == 10:  # random section counts
        i = rng.choice([4, 6, 8, 10])
        data[i : i + 2] = struct.pack(
            "!H", rng.choice([0, 1, 2, 255, 0xFFFF, rng.randrange(65536)])
        )
    elif kind == 11:  # QR, opcode, rcode, Z bits flipped
        data[2] ^= rng.choice([0x80, 0x78, 0x08, 0x02])
        data[3] ^= rng.randrange(256)
    elif kind == 12:  # a splice of two packets
        cut = rng.randrange(len(data))
        data = data[:cut] + other[rng.randrange(len(other)) :]
    elif kind == 13:  # a name of maximum length, or one over
        labels = b"".join(b"\x3f" + b"a" * 63 for _ in range(rng.choice([3, 4])))
        data = data[:12] + labels + b"\x00\x00\x01\x00\x01" + data[len(data) :]
    elif kind == 14:  # class and type edge values
        offs = _label_offsets(bytes(data))
        end = (offs[-1] + 1 + data[offs[-1]] + 1) if offs else 13
        if end + 4 <= len(data):
            data[end : end + 4] = struct.pack(
                "!HH",
                rng.choice([0, 41, 251, 252, 255, 65535, rng.randrange(65536)]),
                rng.choice([1, 3, 254, 255, 0, rng.randrange(65536)]),
            )
    else:  # several mutations stacked
        for _ in range(rng.randrange(2, 4)):
            data = bytearray(mutate(rng, bytes(data), other))
    return bytes(data)


def packet(rng: random.Random, pool: list[bytes]) -> bytes:
    r = rng.random()
    if r < 0.08:
        return rng.randbytes(rng.randrange(0, 600))
    if r < 0.10:
        return rng.randbytes(12) + pool[rng.randrange(len(pool))][12:]  # random header
    if r < 0.15:
        return pool[rng.randrange(len(pool))]  # unmodified: keeps the fast path warm
    return mutate(rng, pool[rng.randrange(len(pool))], pool[rng.randrange(len(pool))])


# -- a fake upstream that answers anything ---------------------------------------------------------
def upstream_reply(data: bytes) -> bytes | None:
    """An A record for names starting with 'a', else NXDOMAIN."""
    off = 12
    while off < len(data) and data[off] and off < 300:
        off += 1 + data[off]
    end = off + 5
    if end > len(data):
        return None
    question = data[12:end]
    if len(question) > 5 and question[1:2].lower() == b"a":
        head = data[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
        rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
        return head + question + rr
    return data[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question


class Upstream(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        out = upstream_reply(data)
        if out is not None:
            self.transport.sendto(out, addr)


async def upstream_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # forward asks over TCP what came in over TCP, as CoreDNS does.
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            (n,) = struct.unpack("!H", await reader.readexactly(2))
            out = upstream_reply(await reader.readexactly(n))
            if out is not None:
                writer.write(struct.pack("!H", len(out)) + out)
    writer.close()


# -- one worker ----------------------------------------------------------------------------------
def check_reply(query: bytes, out: bytes, proto: str, deep: bool) -> str | None:
    if len(out) < 12:
        return "reply shorter than a header"
    if out[:2] != query[:2]:
        return "reply ID differs from the query's"
    if not out[2] & 0x80:
        return "QR not set"
    limit = 65535
    if proto == "udp" and len(out) > 512:
        limit = 512
        with contextlib.suppress(Exception):
            import dns.message

            q = dns.message.from_wire(query)
            if q.edns >= 0:
                limit = max(512, q.payload)
    if len(out) > limit:
        return f"reply of {len(out)} bytes over the client's limit {limit}"
    if deep:
        import dns.message

        if (out[2] >> 3) & 0xF:
            # dnspython reads other opcodes by their own rules (UPDATE's zone section must be
            # SOA); the NOTIMP reply echoes the question as is, so check its structure as QUERY.
            out = out[:2] + bytes([out[2] & 0x87]) + out[3:]
        try:
            dns.message.from_wire(out)
        except Exception as exc:
            return f"dnspython rejects the reply: {type(exc).__name__}: {exc}"
    return None


async def run_worker(seed: int, count: int) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from kdns.config import from_text
    from kdns.server.app import App
    from kdns.server.dispatch import TokenBucket
    from tests.support.ports import free_port

    logging.basicConfig(level=logging.CRITICAL)
    errors_logged = Counter[str]()

    class CountErrors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors_logged[record.name] += 1

    server_log = logging.getLogger("kdns.server")
    server_log.setLevel(logging.ERROR)
    server_log.addHandler(CountErrors(logging.ERROR))

    loop = asyncio.get_running_loop()
    up_port = free_port()
    up_transport, _ = await loop.create_datagram_endpoint(
        Upstream, local_addr=("127.0.0.1", up_port)
    )
    up_tcp = await asyncio.start_server(upstream_tcp, "127.0.0.1", up_port)
    work = Path(tempfile.mkdtemp(prefix="kdns-fuzz-"))
    shutil.copy(ROOT / "examples" / "cluster.yaml", work / "cluster.yaml")
    port = free_port()
    text = COREFILE.format(port=port, metrics=free_port(), upstream=up_port)
    (work / "Corefile").write_text(text)
    registry = CollectorRegistry()
    app = App(from_text(text, str(work / "Corefile")), registry)
    run = asyncio.create_task(app.run())
    await asyncio.wait_for(app.started.wait(), 30)
    dispatchers = [app.instance.dispatchers[k] for k in sorted(app.instance.dispatchers)]  # type: ignore[union-attr]
    panics_before = app.recorder.panics  # the dispatchers' panic observer counts here

    for d in dispatchers:
        # Lift the FORMERR/NOTIMP rate limit so every error reply is built and checked.
        d._error_budget = TokenBucket(1e12)

    rng = random.Random(seed)
    pool = seeds()
    stats: Counter[str] = Counter()
    crashes: list[str] = []
    bad: list[str] = []
    servfails: list[str] = []
    pending: set[asyncio.Task[None]] = set()

    async def full(d: Any, data: bytes, proto: str, n: int) -> None:
        try:
            out = await d.serve(data, proto, "127.0.0.1", 40000 + n % 20000)
        except Exception:
            stats["unhandled"] += 1
            if len(crashes) < 5:
                crashes.append(f"{data.hex()}\n{traceback.format_exc()}")
            return
        if out is None:
            stats["dropped"] += 1
            return
        stats["answered"] += 1
        stats[f"rcode{out[3] & 0xF}"] += 1
        if out[3] & 0xF == 2 and len(servfails) < 20:
            servfails.append(data.hex())
        problem = check_reply(data, out, proto, n % 50 == 0)
        if problem:
            stats["bad_reply"] += 1
            if len(bad) < 5:
                bad.append(f"{problem}: query {data.hex()} reply {out.hex()}")
        if len(pool) < 5000 and out[3] & 0xF == 0 and rng.random() < 0.01:
            pool.append(data)  # a query that worked: mutate it further later

    start = time.perf_counter()
    for n in range(count):
        data = packet(rng, pool)
        d = dispatchers[n % 7 == 0]
        proto = "tcp" if n % 10 == 0 else "udp"
        stats["packets"] += 1
        if proto == "udp":
            try:
                fast = d.fast_answer(data)
            except Exception:
                stats["unhandled"] += 1
                if len(crashes) < 5:
                    crashes.append(f"fast path {data.hex()}\n{traceback.format_exc()}")
                continue
            if fast is not None:
                stats["fast_hits"] += 1
                problem = check_reply(data, fast, proto, n % 50 == 0)
                if problem:
                    stats["bad_reply"] += 1
                    if len(bad) < 5:
                        bad.append(f"fast path: {problem}: query {data.hex()}")
                continue
        task = asyncio.create_task(full(d, data, proto, n))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if len(pending) >= 200:
            await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.wait(set(pending))
    wall = time.perf_counter() - start
    metric = registry.get_sample_value("coredns_panics_total")
    app.stop()
    await asyncio.wait_for(run, 30)
    up_transport.close()
    up_tcp.close()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "seed": seed,
        "wall_seconds": wall,
        "stats": dict(stats),
        "panics": app.recorder.panics - panics_before,
        "coredns_panics_total": metric,
        "errors_logged": dict(errors_logged),
        "crashes": crashes,
        "bad_replies": bad,
        "servfails": servfails,
    }


def worker(seed: int, count: int) -> dict[str, Any]:
    try:
        import uvloop

        return uvloop.run(run_worker(seed, count))  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.run(run_worker(seed, count))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packets", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--show-servfail", action="store_true", help="print queries answered SERVFAIL")
    args = p.parse_args()
    per = [args.packets // args.workers] * args.workers
    per[0] += args.packets - sum(per)
    start = time.perf_counter()
    if args.workers == 1:
        results = [worker(args.seed, per[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = pool.starmap(worker, [(args.seed + i, n) for i, n in enumerate(per)])
    wall = time.perf_counter() - start
    total: Counter[str] = Counter()
    for r in results:
        total.update(r["stats"])
    panics = sum(r["panics"] for r in results)
    metric = sum(r["coredns_panics_total"] or 0 for r in results)
    errors = sum(sum(r["errors_logged"].values()) for r in results)
    print(f"packets: {total['packets']:,} in {wall:.0f}s over {args.workers} process(es)")
    print(
        f"  fast-path hits {total['fast_hits']:,}, full path answered {total['answered']:,}, "
        f"dropped {total['dropped']:,}"
    )
    rcodes = {k: v for k, v in sorted(total.items()) if k.startswith("rcode")}
    print(f"  full-path rcodes: {rcodes}")
    print(
        f"unhandled exceptions: {total['unhandled']}; panics (observed): {panics}; "
        f"coredns_panics_total: {metric:g}; errors logged by kdns.server: {errors}; "
        f"malformed replies: {total['bad_reply']}"
    )
    for r in results:
        for c in r["crashes"]:
            print("CRASH:", c)
        for b in r["bad_replies"]:
            print("BAD REPLY:", b)
    if args.show_servfail:
        for r in results:
            for q in r["servfails"]:
                print("SERVFAIL for", q)
    failed = total["unhandled"] or panics or metric or total["bad_reply"]
    print("RESULT:", "FAIL" if failed else "OK")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

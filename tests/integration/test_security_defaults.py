"""Security defaults of a real `kdns serve` process: it listens only where the Corefile says,
and query names reach its logs only through the plugins that exist to log them.

(The forwarder's random IDs and source ports and its reply validation are in test_forward.py:
`test_random_ids_and_source_ports`, `test_forged_replies_are_never_accepted`; that forgeries
never enter the cache is `test_cache.py::test_spoofed_replies_never_enter_the_cache`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.rcode

from tests.support.client import ask
from tests.support.ports import free_port
from tests.support.server import with_bundled_cluster

ROOT = Path(__file__).resolve().parents[2]
BASE = """\
.:{port} {{
    bind 127.0.0.1
{extra}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        snapshot cluster.yaml
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    forward . 127.0.0.1:{dead}
}}
"""


@dataclass
class Proc:
    proc: asyncio.subprocess.Process
    port: int
    output: str = ""  # stdout and stderr


@contextlib.asynccontextmanager
async def kdns_process(tmp_path: Path, extra: str = "") -> AsyncIterator[Proc]:
    with_bundled_cluster(tmp_path)
    port = free_port()
    dead = free_port()  # nothing listens there: forwarded queries fail (SERVFAIL)
    conf = tmp_path / "Corefile"
    conf.write_text(BASE.format(port=port, dead=dead, extra=extra))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kdns", "serve", "--conf", str(conf),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    running = Proc(proc, port)
    try:
        async with asyncio.timeout(20):
            while True:
                assert proc.returncode is None, "kdns exited during start-up"
                try:
                    await ask(port, "kubernetes.default.svc.cluster.local.", timeout=0.3)
                    break
                except (dns.exception.Timeout, OSError):
                    await asyncio.sleep(0.05)
        yield running
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            out, err = await proc.communicate()
        running.output = (out + err).decode(errors="replace")


# -- sockets -------------------------------------------------------------------------------------
def _addr(hexaddr: str) -> str:
    host, _ = hexaddr.split(":")
    raw = bytes.fromhex(host)
    # /proc/net shows addresses as host-order 32-bit words.
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    return str(ipaddress.ip_address(b"".join(words)))


def open_sockets(pid: int) -> set[tuple[str, str, int]]:
    """(proto, local address, local port) of every TCP listener and UDP socket of `pid`."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in inodes:
                continue
            if proto.startswith("tcp") and state != "0A":  # only listening TCP sockets
                continue
            found.add((proto[:3], _addr(local), int(local.split(":")[1], 16)))
    return found


async def test_only_the_dns_port_is_open_without_ops_plugins(tmp_path: Path) -> None:
    async with kdns_process(tmp_path, "    errors\n    cache 30\n") as p:
        sockets = open_sockets(p.proc.pid)
    assert sockets == {("tcp", "127.0.0.1", p.port), ("udp", "127.0.0.1", p.port)}


async def test_ops_endpoints_listen_only_where_configured(tmp_path: Path) -> None:
    health, ready, metrics = free_port("127.0.0.2"), free_port("127.0.0.3"), free_port("127.0.0.4")
    extra = (
        f"    health 127.0.0.2:{health}\n    ready 127.0.0.3:{ready}\n"
        f"    prometheus 127.0.0.4:{metrics}\n"
    )
    async with kdns_process(tmp_path, extra) as p:
        sockets = open_sockets(p.proc.pid)
    assert sockets == {
        ("tcp", "127.0.0.1", p.port),
        ("udp", "127.0.0.1", p.port),
        ("tcp", "127.0.0.2", health),
        ("tcp", "127.0.0.3", ready),
        ("tcp", "127.0.0.4", metrics),
    }


# -- logs ----------------------------------------------------------------------------------------
PROBES = [
    ("probe-one.shop.svc.cluster.local.", "A", dns.rcode.NXDOMAIN),  # not in the cluster
    ("web.shop.svc.cluster.local.", "A", dns.rcode.NOERROR),
    ("probe-two.example.test.", "A", dns.rcode.SERVFAIL),  # forwarded to a dead upstream
    ("probe-three.example.test.", "TXT", dns.rcode.SERVFAIL),
]


async def _ask_probes(port: int) -> None:
    for name, qtype, rcode in PROBES:
        for tcp in (False, True):
            msg = await ask(port, name, qtype, tcp=tcp, timeout=10)
            assert msg.rcode() == rcode, (name, dns.rcode.to_text(msg.rcode()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # and some garbage
        garbage = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x0bprobe-four"
        s.sendto(garbage, ("127.0.0.1", port))


async def test_no_query_names_in_logs_without_log_or_errors(tmp_path: Path) -> None:
    async with kdns_process(tmp_path, "    cache 30\n") as p:
        await _ask_probes(p.port)
    assert "probe" not in p.output and "web.shop" not in p.output, p.output
    assert "starting" in p.output  # the process did log (so the check above saw its logs)


async def test_errors_logs_only_failing_queries(tmp_path: Path) -> None:
    # `errors` is how an operator asks for failed queries to be logged (as CoreDNS's does):
    # the SERVFAIL names appear, the answered and NXDOMAIN ones do not.
    async with kdns_process(tmp_path, "    errors\n") as p:
        await _ask_probes(p.port)
    assert "probe-two.example.test." in p.output
    assert "probe-one" not in p.output and "web.shop" not in p.output


async def test_log_logs_every_query(tmp_path: Path) -> None:
    async with kdns_process(tmp_path, "    log\n") as p:
        await _ask_probes(p.port)
    for name, _, _ in PROBES:
        assert name in p.output

"""SIGTERM with lameduck: DNS keeps answering for the lameduck time, /ready turns 503, accepted
queries are answered, and the process exits 0. Also: accepted slow queries are drained."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from kdns.dns.message import NOERROR, Reply, Request
from kdns.server.dispatch import Dispatcher, Route
from kdns.transport.listener import Listener
from tests.integration.test_http_endpoints import SNAPSHOT
from tests.support.client import ask
from tests.support.http import get
from tests.support.load import steady_load
from tests.support.ports import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
NAME = "web.default.svc.cluster.local."
LAMEDUCK = 1.5


async def _wait_up(port: int, health: int, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(20):
        while True:
            assert proc.returncode is None, "kdns exited during start-up"
            try:
                if (await get(health, "/health"))[0] == 200:
                    await ask(port, NAME, "A", timeout=0.5)
                    return
            except Exception:
                pass
            await asyncio.sleep(0.05)


async def test_sigterm_lameduck_under_load(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    port, health, ready = free_port(), free_port(), free_port()
    conf = tmp_path / "Corefile"
    conf.write_text(f"""\
cluster.local:{port} {{
    bind 127.0.0.1
    health 127.0.0.1:{health} {{
        lameduck {LAMEDUCK}s
    }}
    ready 127.0.0.1:{ready}
    kubernetes {{
        snapshot snap.yaml
    }}
}}
""")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kdns", "serve", "--conf", str(conf),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _wait_up(port, health, proc)
        assert await get(ready, "/ready") == (200, "OK")
        async with steady_load(port, NAME) as load:
            await eventually(lambda: load.ok >= 20, 5)
            sent_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(5):
                while (await get(ready, "/ready"))[0] != 503:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert await get(ready, "/ready") == (503, "Shutting down")
            before = load.ok
            # Keep querying through most of the lameduck period: every query must succeed.
            while time.monotonic() - sent_at < LAMEDUCK * 0.7:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert load.ok > before
        assert load.failed == []
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert time.monotonic() - sent_at >= LAMEDUCK
        text = err.decode()
        assert "SIGTERM: Shutting down servers then terminating" in text
        assert "Going into lameduck mode for 1.5s" in text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_shutdown_drains_accepted_queries() -> None:
    calls: list[str] = []

    async def slow(request: Request) -> Reply:
        calls.append(request.proto)
        await asyncio.sleep(0.3)
        return Reply(rcode=NOERROR)

    dispatcher = Dispatcher([Route((".",), slow, "dns://:0")])
    port = free_port()
    listener = Listener(("127.0.0.1", port), dispatcher.serve)
    await listener.open()
    try:
        udp = asyncio.create_task(ask(port, "slow.example.", "A"))
        tcp = asyncio.create_task(ask(port, "slow.example.", "A", tcp=True))
        await eventually(lambda: len(calls) >= 2, 3)  # both queries accepted and being answered
        listener.stop_accepting()
        async with asyncio.timeout(3):
            await listener.drain()
        replies = await asyncio.gather(udp, tcp)
        assert [r.rcode() for r in replies] == [0, 0]
    finally:
        await listener.close()

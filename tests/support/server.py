"""Run kdns in-process on loopback for a test, and wait until it answers."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from kdns.config import from_text
from kdns.server.app import App
from tests.support.ports import free_port


@dataclass
class Running:
    app: App
    port: int
    corefile: Path
    registry: CollectorRegistry


@contextlib.asynccontextmanager
async def running_kdns(
    corefile: str, directory: Path, *, port: int | None = None, start_timeout: float = 15.0
) -> AsyncIterator[Running]:
    """Serve `corefile` (PORT is replaced by a free port) from `directory` until the block ends."""
    port = port or free_port()
    text = corefile.replace("PORT", str(port))
    path = directory / "Corefile"
    path.write_text(text)
    registry = CollectorRegistry()
    app = App(from_text(text, str(path)), registry)
    task = asyncio.create_task(app.run())
    try:
        async with asyncio.timeout(start_timeout):
            started = asyncio.create_task(app.started.wait())
            done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                started.cancel()
                task.result()  # raises the start-up error
        yield Running(app, port, path, registry)
    finally:
        app.stop()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(15):
                await task


BUNDLED_CLUSTER = Path(__file__).parents[2] / "examples" / "cluster.yaml"


def with_bundled_cluster(directory: Path) -> Path:
    """`directory`, holding a copy of the repo's examples/cluster.yaml as cluster.yaml."""
    shutil.copy(BUNDLED_CLUSTER, directory / "cluster.yaml")
    return directory

"""Running `kdns diagnose` as a user does: a subprocess, its exit status, stdout and stderr."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]


async def diagnose(*args: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kdns",
        "diagnose",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def diagnose_json(*args: str, cwd: Path = ROOT) -> dict[str, Any]:
    code, out, err = await diagnose(*args, "--json", cwd=cwd)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc

"""`dig` (BIND's) as an independent client of the server under test."""

from __future__ import annotations

import asyncio
import shutil

DIG = shutil.which("dig")


async def dig(port: int, *args: str, host: str = "127.0.0.1") -> str:
    """dig's output; run without blocking the loop that serves it."""
    assert DIG is not None
    proc = await asyncio.create_subprocess_exec(
        DIG,
        f"@{host}",
        "-p",
        str(port),
        "+time=2",
        "+tries=1",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err
    return out.decode()

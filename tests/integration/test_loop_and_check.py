"""`loop` end to end, and `kdns check` on the Corefile kubeadm installs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from kdns import cli
from kdns.plugins import directives
from kdns.plugins.loop import LoopPlugin
from tests.support.ports import free_port
from tests.support.server import running_kdns
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
KUBEADM = ROOT / "tests" / "data" / "kubeadm.Corefile"
NOT_HERE_YET = ("forward", "cache", "loadbalance")


async def test_loop_probe_without_a_loop_keeps_serving(tmp_path: Path) -> None:
    async with running_kdns(".:PORT {\n    bind 127.0.0.1\n    loop\n}\n", tmp_path) as srv:
        assert srv.app.instance is not None
        (plugin,) = [p for p in srv.app.instance.plugins if isinstance(p, LoopPlugin)]
        # The probe is answered (SERVFAIL: nothing after loop), seen once, then detection ends.
        await eventually(lambda: plugin.disabled, 10)
        assert plugin.seen == 1
        assert srv.app.exit_code == 0 and not srv.app.stopping.is_set()


@pytest.mark.skipif(directives.spec("forward") is None, reason="forward is not implemented yet")
async def test_forwarding_loop_is_detected_and_exits(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "Corefile"
    conf.write_text(
        f".:{port} {{\n    bind 127.0.0.1\n    loop\n    forward . 127.0.0.1:{port}\n}}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kdns", "serve", "--conf", str(conf),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(40):
            _, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 1, text
    assert "[FATAL] plugin/loop: Loop (127.0.0.1:" in text
    assert f' -> 127.0.0.1:{port}) detected for zone ".", see ' in text
    assert 'https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO ' in text


def test_check_accepts_kubeadm_corefile_minus_missing_plugins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = KUBEADM.read_text().splitlines(keepends=True)
    text = "".join(lines)
    for name in NOT_HERE_YET:
        if directives.spec(name) is None:
            text = _drop_directive(text, name)
    conf = tmp_path / "Corefile"
    conf.write_text(text)
    assert cli.main(["check", "--conf", str(conf)]) == 0, capsys.readouterr().err
    assert "OK" in capsys.readouterr().out


@pytest.mark.skipif(
    any(directives.spec(n) is None for n in NOT_HERE_YET),
    reason="forward, cache and loadbalance are implemented on other branches",
)
def test_check_accepts_kubeadm_corefile_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--conf", str(KUBEADM)]) == 0, capsys.readouterr().err


def _drop_directive(text: str, name: str) -> str:
    """The Corefile without directive `name` (and its block, if it has one)."""
    out: list[str] = []
    depth = 0
    for line in text.splitlines(keepends=True):
        if depth:
            depth += line.count("{") - line.count("}")
            continue
        if line.strip().split(" ")[0] == name:
            depth = line.count("{") - line.count("}")
            continue
        out.append(line)
    return "".join(out)


async def test_fatal_stops_without_lameduck_and_exits_1(tmp_path: Path) -> None:
    text = (
        ".:PORT {\n    bind 127.0.0.1\n    health 127.0.0.1:HP {\n        lameduck 30s\n    }\n}\n"
    )
    async with running_kdns(text.replace("HP", str(free_port())), tmp_path) as srv:
        srv.app.fatal("plugin/loop: Loop detected")
        await eventually(lambda: not srv.app.listeners, 5)  # not the 30s lameduck
        assert srv.app.exit_code == 1 and not srv.app.lameduck

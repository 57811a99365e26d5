"""What a snapshot's mistakes look like to an operator: `kdns check` names each at its line,
`kdns serve` logs each once and keeps serving the last good snapshot, a missing file is said once.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kdns.cluster.index import IndexBuilder
from kdns.sources.static import StaticSource
from tests.support.client import ask
from tests.support.server import running_kdns
from tests.support.waiting import eventually

ROOT = Path(__file__).parents[2]
MISTAKES = ROOT / "tests" / "data" / "snapshot-with-mistakes.yaml"

GOOD = """\
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.7, ports: [{name: http, port: 80}]}
"""
COREFILE = """\
cluster.local:PORT {
    bind 127.0.0.1
    kubernetes {
        snapshot snap.yaml
    }
}
"""


def check(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdns", "check", "--conf", str(conf)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_reads_the_snapshot_the_corefile_names(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(COREFILE.replace("PORT", "1053"))
    snap = tmp_path / "snap.yaml"  # relative to the Corefile, not to the working directory
    shutil.copy(MISTAKES, snap)
    out = check(conf)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert f"{snap}:14: Service default/web: spec.clusterIP '10.96.777.7' is not an IP address" in (
        lines
    )
    assert (
        f"{snap}:22: warning: Service default/pay: unknown field spec.externalname "
        "(did you mean externalName?)"
    ) in lines
    assert len(lines) == 8  # every mistake of the file, in one pass
    assert "OK" not in out.stdout

    snap.write_text(GOOD + "---\nkind: Servce\nmetadata: {name: x}\n")
    out = check(conf)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        f"{snap}:5: warning: kind 'Servce' is not one kdns reads (did you mean Service?): "
        "object skipped"
    ]
    assert out.stdout.splitlines()[-2:] == [
        f"{snap}: snapshot of 1 services, 0 endpointslices, 0 pods, 0 namespaces",
        f"{conf}: OK, no errors found (1 server block, 1 warning)",
    ]

    snap.unlink()
    out = check(conf)
    assert out.returncode == 1
    assert out.stderr.strip() == f"{snap}: cannot read snapshot: No such file or directory"


async def test_a_broken_edit_keeps_the_last_good_snapshot_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snap = tmp_path / "snap.yaml"
    snap.write_text(GOOD)
    async with running_kdns(COREFILE, tmp_path) as srv:
        reply = await ask(srv.port, "web.default.svc.cluster.local")
        assert [r.to_text() for r in reply.answer[0]] == ["10.96.0.7"]
        with caplog.at_level(logging.WARNING, logger="kdns.snapshot"):
            snap.write_text(GOOD.replace("10.96.0.7", "10.96.777.7").replace("ports", "prots"))
            want = f"{snap}: still serving the last good snapshot"
            await eventually(lambda: want in caplog.messages, 10)
        assert (
            f"{snap}:3: Service default/web: spec.clusterIP '10.96.777.7' is not an IP address"
            in (caplog.messages)
        )
        assert (
            f"{snap}:3: Service default/web: unknown field spec.prots (did you mean ports?)"
            in caplog.messages
        )
        reply = await ask(srv.port, "web.default.svc.cluster.local")
        assert [r.to_text() for r in reply.answer[0]] == ["10.96.0.7"]


def test_a_missing_snapshot_is_said_once_until_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snap = tmp_path / "snap.yaml"
    source = StaticSource(snap, IndexBuilder(), lambda: None)
    with caplog.at_level(logging.INFO, logger="kdns.snapshot"):
        for _ in range(5):  # five polls of a file that is not there
            assert source.load_once() is False
        assert caplog.messages == [f"{snap}: cannot read snapshot: No such file or directory"]
        snap.write_text(GOOD)
        assert source.load_once() is True
        snap.unlink()
        for _ in range(3):
            assert source.load_once() is False
    assert caplog.messages[1:] == [
        f"loaded snapshot {snap}: 1 services, 0 endpointslices, 0 pods, 0 namespaces",
        f"{snap}: cannot read snapshot: No such file or directory",
        f"{snap}: still serving the last good snapshot",
    ]

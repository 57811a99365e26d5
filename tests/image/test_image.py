"""The container image, built with the container tool at hand (`image/build.sh`, as `make image`)
and run as the Deployment runs it: uid 65532, entrypoint kdns, a Corefile mounted in /etc/kdns.

Marked `image`: it runs in `make test` wherever a tool can build (buildah is installed from
Debian's packages by the Makefile when none is), and skips with the reason where none can be had.
The first build on a machine bootstraps the base from Debian's packages (about a minute); later
runs reuse it, so the test takes about half a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from kdns import __version__
from tests.support.ports import free_port

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

ROOT = Path(__file__).parents[2]
BUILD = ROOT / "image" / "build.sh"
UID = "65532:65532"
ENTRYPOINT = ["/opt/kdns/bin/kdns"]


def tool() -> str:
    """The tool image/build.sh would build with; skips the module when there is none."""
    env = {**os.environ, "KDNS_IMAGE_NO_INSTALL": "1"}  # installing is the Makefile's part
    out = subprocess.run(
        [str(BUILD), "--print-tool"], capture_output=True, text=True, env=env, timeout=60
    )
    if out.returncode == 3:
        pytest.skip(f"no image test: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[str, str]]:
    """(tool, tag) of an image built from this tree, removed afterwards."""
    name = tool()
    tag = f"localhost/kdns:test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TAG": tag, "KDNS_IMAGE_LAYERS": "0", "KDNS_IMAGE_NO_INSTALL": "1"}
    out = subprocess.run([str(BUILD)], capture_output=True, text=True, env=env, timeout=840)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    try:
        yield name, tag
    finally:
        rmi = [name, "rmi", "-f", tag] if name != "buildah" else ["buildah", "rmi", "-f", tag]
        subprocess.run(rmi, capture_output=True, timeout=120)


@contextlib.contextmanager
def container(name: str, tag: str) -> Iterator[list[str]]:
    """A command prefix that runs a program in the image as uid 65532 with `conf` mounted.

    buildah runs it with chroot isolation: no runtime, cgroups or network namespace needed, so
    a server in it listens on this machine's loopback. Other tools run it on the host network.
    """
    if name == "buildah":
        ctr = subprocess.run(
            ["buildah", "from", "--quiet", tag], capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            yield ["buildah", "run", "--isolation", "chroot", "--user", UID, ctr, "--"]
        finally:
            subprocess.run(["buildah", "rm", ctr], capture_output=True, timeout=60)
    else:
        yield [name, "run", "--rm", "--network", "host", "--user", UID, "--entrypoint", "", tag]


def config(name: str, tag: str) -> dict[str, object]:
    if name == "buildah":
        raw = subprocess.run(
            ["buildah", "inspect", "--type", "image", tag], capture_output=True, text=True
        ).stdout
        cfg: dict[str, object] = json.loads(raw)["OCIv1"]["config"]
        return cfg
    raw = subprocess.run([name, "image", "inspect", tag], capture_output=True, text=True).stdout
    docker_cfg: dict[str, object] = json.loads(raw)[0]["Config"]
    return {"User": docker_cfg["User"], "Entrypoint": docker_cfg["Entrypoint"]}


def mounted(prefix: list[str], conf: Path) -> list[str]:
    """`prefix` with `conf` mounted read-only at /etc/kdns (before the image or container)."""
    # Options go before the container (buildah: `CTR --`) or the image (the last word).
    at = prefix.index("--") - 1 if "--" in prefix else len(prefix) - 1
    return [*prefix[:at], "--volume", f"{conf}:/etc/kdns:ro", *prefix[at:]]


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """/etc/kdns as the ConfigMap mounts it: a Corefile and the bundled snapshot, world-readable."""
    port = free_port()
    (tmp_path / "Corefile").write_text(
        f"cluster.local:{port} {{\n    bind 127.0.0.1\n    errors\n"
        "    kubernetes {\n        snapshot cluster.yaml\n    }\n}\n"
    )
    shutil.copy(ROOT / "examples" / "cluster.yaml", tmp_path / "cluster.yaml")
    for path in (tmp_path, *tmp_path.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp_path


def test_image_runs_kdns_as_uid_65532(image: tuple[str, str], conf: Path) -> None:
    name, tag = image
    cfg = config(name, tag)
    assert cfg["User"] == UID
    assert cfg["Entrypoint"] == ENTRYPOINT
    with container(name, tag) as run:
        out = subprocess.run([*run, "kdns", "--version"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"kdns {__version__}"
        out = subprocess.run([*run, "id", "-u"], capture_output=True, text=True)
        assert out.stdout.strip() == "65532"
        check = [*mounted(run, conf), "kdns", "check", "--conf", "/etc/kdns/Corefile"]
        out = subprocess.run(check, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[-1] == (
            "/etc/kdns/Corefile: OK, no errors found (1 server block)"
        )


def test_image_serves_a_query(image: tuple[str, str], conf: Path) -> None:
    name, tag = image
    port = int((conf / "Corefile").read_text().split(":", 2)[1].split()[0])
    with container(name, tag) as run:
        serve = [*mounted(run, conf), "kdns", "serve", "--conf", "/etc/kdns/Corefile"]
        proc = subprocess.Popen(
            serve,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group: the tool and kdns under it stop together
        )
        try:
            assert proc.stdout is not None
            # Bounded by the pytest timeout: kdns logs its DNS address once it listens.
            for line in proc.stdout:
                if "dns: listening on" in line:
                    break
            else:
                pytest.fail(f"kdns in the image exited with {proc.wait()}")
            query = dns.message.make_query("kubernetes.default.svc.cluster.local", "A")
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
            assert [rr.to_text() for rr in reply.answer[0]] == ["10.96.0.1"]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
            proc.stdout.close()

"""The command line as a user runs it: `kdns serve`, `kdns check`, `kdns --version`, with dig."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.server import with_bundled_cluster

ROOT = Path(__file__).parents[2]
DIG = shutil.which("dig")


def kdns(*args: str, cwd: Path = ROOT, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdns", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        **kw,  # type: ignore[call-overload]
    )


def dig(port: int, *args: str) -> str:
    """dig's output, or "" when no server answered."""
    assert DIG is not None
    out = subprocess.run(
        [DIG, "@127.0.0.1", "-p", str(port), "+time=1", "+tries=1", *args],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout if out.returncode == 0 else ""


def test_version() -> None:
    out = kdns("--version")
    assert out.returncode == 0 and out.stdout.startswith("kdns ")


def test_check_accepts_the_bundled_corefile() -> None:
    out = kdns("check", "--conf", "Corefile")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "Corefile: OK, no errors found (1 server block)"


def test_check_reports_every_error_in_one_pass(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(
        ".:53 {\n    errors\n    kubernets cluster.local\n    cache -5\n    forward . 1.2.3.4\n}\n"
        "example.org:99999 {\n    ttl\n}\n"
        "example.net:53 {\n    health :8080 :8081\n}\n"
        ".:53 {\n    frobnicate\n}\n"
    )
    out = kdns("check", "--conf", str(conf))
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        f'{conf}:3: unknown directive "kubernets"',
        f"{conf}:4: cache TTL must be between 1 and 2147483648, got -5",
        f"{conf}:7: invalid port '99999' in server key 'example.org:99999'",
        f'{conf}:8: unknown directive "ttl"',
        f"{conf}:11: wrong number of arguments for health: "
        "usage: health [ADDRESS] { lameduck DURATION }",
        f"{conf}:13: zone . on port 53 is already served by the block at {conf}:1",
        f'{conf}:14: unknown directive "frobnicate"',
    ]


def test_check_names_file_and_line_of_a_typo(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(".:53 {\n    errors\n    kubernets cluster.local\n}\n")
    out = kdns("check", "--conf", str(conf))
    assert out.returncode != 0
    assert out.stderr.strip() == f'{conf}:3: unknown directive "kubernets"'


@pytest.mark.skipif(DIG is None, reason="dig is installed by `make test`")
def test_serve_answers_dig_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    with_bundled_cluster(tmp_path)
    text = (ROOT / "Corefile").read_text().replace("1053", str(port))
    http = {default: free_port() for default in (8080, 8181, 9153)}
    for default, chosen in http.items():
        text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{chosen}")
    text = text.replace("examples/cluster.yaml", "cluster.yaml")
    # Nothing here should go upstream; if it did, it must stay on loopback (nothing listens).
    text = text.replace("/etc/resolv.conf", "127.0.0.1:9")
    (tmp_path / "Corefile").write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdns", "serve", "--conf", str(tmp_path / "Corefile")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        answer = ""
        while time.monotonic() < deadline and proc.poll() is None:
            answer = dig(port, "kubernetes.default.svc.cluster.local", "+short")
            if answer.strip():
                break
            time.sleep(0.1)  # poll interval while the server starts
        assert answer.strip() == "10.96.0.1"
        srv = dig(port, "_https._tcp.kubernetes.default.svc.cluster.local", "SRV", "+short")
        assert srv.strip() == "0 100 443 kubernetes.default.svc.cluster.local."
        tcp = dig(port, "+tcp", "db-0.db.shop.svc.cluster.local", "+short")
        assert tcp.strip() == "10.244.1.10"
        nx = dig(port, "nope.default.svc.cluster.local")
        assert "status: NXDOMAIN" in nx
        # The operational surface README describes, on loopback.
        for default, path in ((8080, "/health"), (8181, "/ready"), (9153, "/metrics")):
            with urllib.request.urlopen(f"http://127.0.0.1:{http[default]}{path}", timeout=5) as r:
                assert r.status == 200
                if path == "/metrics":
                    assert b"coredns_dns_requests_total" in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    # Startup names every address it listens on, DNS and HTTP.
    assert f"dns: listening on 127.0.0.1:{port} (udp, tcp)" in err
    for default, path in ((8080, "/health"), (8181, "/ready"), (9153, "/metrics")):
        assert f"http: listening on 127.0.0.1:{http[default]} ({path})" in err


def test_serve_refuses_a_broken_corefile(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(".:53 {\n  kubernetes {\n    ttl -1\n  }\n}\n")
    out = kdns("serve", "--conf", str(conf))
    assert out.returncode == 1
    assert f"{conf}:3: ttl must be between 0 and 3600" in out.stderr

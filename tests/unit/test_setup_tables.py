"""CoreDNS's own setup-test rows: every directive text CoreDNS 1.14 accepts, kdns accepts, and
every one it refuses, kdns refuses with a `file:line: message` (the `kdns check` path).

tests/data/setup-tables.yaml is copied from CoreDNS's setup_test.go tables (one row per case).
Each row goes inside a server block, as a Corefile would hold it. Rows whose placeholders stand
for values the Go test made at run time get equivalent values here (files in a temporary working
directory, loopback addresses).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdns import config
from kdns.corefile import CorefileError

DATA = Path(__file__).resolve().parent.parent / "data" / "setup-tables.yaml"
ZONES = DATA.parent / "zones"
ROWS: list[dict[str, Any]] = yaml.safe_load(DATA.read_text())

# Rows kdns does not agree with yet, and why. The table test reports them; it fails on any
# other disagreement, so a row leaves this list as soon as its directive supports it.
_PENDING_GROUPS: dict[str, tuple[str, ...]] = {}
PENDING: dict[str, str] = {rid: why for why, ids in _PENDING_GROUPS.items() for rid in ids}

_PLACEHOLDERS = {
    "{server_fail_s.Addr}": "127.0.0.1:5301",
    "{server_refused_s.Addr}": "127.0.0.1:5302",
    "{s.Addr}": "127.0.0.1:5303",
    "{largeRegex}": "a" * 10001,
    "{zoneFileName1}": "db.miek.nl",
    "{zoneFileName2}": "db.dnssex.nl",
    "{zoneFileName3}": "db.relative",
}

# Files the Go tests create in their working directory before parsing.
_FILES = {
    "resolv.conf": "nameserver 10.10.255.252\nnameserver 10.10.255.253\n",
    "resolv-ipv6.conf": "nameserver 0388:d254:7aec:6892:9f7f:e93b:5806:1b0f%en0\n",
    "empty.conf": "# nameserver 1.1.1.1\n# nameserver 1.0.0.1\n",
    "null.conf": "",
    "autopath-resolv.conf": (
        "nameserver 1.2.3.4\ndomain foo.com\nsearch bar.com baz.com\noptions ndots:5\n"
    ),
    # The zone files of the file plugin's tests.
    "db.miek.nl": (ZONES / "miek.nl.db").read_text(),
    "existing.db": (ZONES / "miek.nl.db").read_text(),
    "db.dnssex.nl": (ZONES / "dnssex.nl.signed").read_text(),
    "db.relative": (
        "@ 500 IN SOA ns.example. hostmaster.example. 3 3600 600 86400 300\n"
        "@ 500 IN NS ns.example.\nfoo 500 IN A 192.0.2.1\n"
    ),
}


def row_id(row: dict[str, Any]) -> str:
    return f"{row['plugin']}: {row['test']}"


def corefile_text(row: dict[str, Any], workdir: Path) -> str:
    text = str(row["directive_text"]).replace("<TMPDIR>", str(workdir))
    text = text.replace("{resolv}", str(workdir / "autopath-resolv.conf"))
    for mark, value in _PLACEHOLDERS.items():
        text = text.replace(mark, value)
    keys = row.get("server_block_keys")
    key = " ".join(keys) if keys else "."
    return f"{key} {{\n{text}\n}}\n"


def verdict(row: dict[str, Any], workdir: Path) -> str | None:
    """None if kdns accepts the row, else its refusal."""
    try:
        config.from_text(corefile_text(row, workdir), "Corefile")
    except CorefileError as exc:
        return str(exc)
    return None


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, content in _FILES.items():
        (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_rows_are_unique_and_complete() -> None:
    assert len(ROWS) == 478
    ids = [row_id(r) for r in ROWS]
    assert len(set(ids)) == len(ids)
    assert set(PENDING) <= set(ids)


@pytest.mark.parametrize("row", [r for r in ROWS if row_id(r) not in PENDING], ids=row_id)
def test_row_agrees_with_coredns(row: dict[str, Any], workdir: Path) -> None:
    refusal = verdict(row, workdir)
    if row["should_error"]:
        assert refusal is not None, "CoreDNS refuses this, kdns accepted it"
        assert re.match(r"^Corefile:\d+: \S", refusal), refusal
    else:
        assert refusal is None, f"CoreDNS accepts this, kdns refused: {refusal}"


def test_agreement_report(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agree = sum((verdict(r, workdir) is not None) == r["should_error"] for r in ROWS)
    with capsys.disabled():
        print(f"\nsetup tables: {agree}/{len(ROWS)} rows agree ({100 * agree / len(ROWS):.1f} %)")
        for rid, reason in sorted(PENDING.items()):
            print(f"  pending {rid}: {reason}")
    stale = [
        r
        for r in ROWS
        if row_id(r) in PENDING and (verdict(r, workdir) is not None) == r["should_error"]
    ]
    assert not stale, f"these rows agree now; drop them from PENDING: {[row_id(r) for r in stale]}"
    assert agree == len(ROWS) - len(PENDING)

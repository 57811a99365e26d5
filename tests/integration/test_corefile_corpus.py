"""Real clusters' Corefiles through `kdns check`: the corpus in tests/data/corefiles.

58 Corefiles that distributions and documentation ship (sources.md says where each is from,
index.json what each uses). Every one a current CoreDNS accepts must pass `kdns check`; the 4
legacy ones use what CoreDNS removed and must be refused with a `file:line` error that names
the replacement. Files a Corefile reads (hosts files, a zone file, a CA bundle) are created
under a temporary root and the Corefile's absolute paths pointed there.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from kdns import cli

CORPUS = Path(__file__).parents[1] / "data" / "corefiles"
INDEX = json.loads((CORPUS / "index.json").read_text())

# Files CoreDNS itself refuses although the corpus does not mark them legacy, with what each
# of their errors must name: kdns refuses them for the same reasons, each as file:line.
COREDNS_REFUSES: dict[str, tuple[str, ...]] = {
    # Kubespray's docs values `cache 0` and `denial 0` are refused by CoreDNS's cache setup
    # (its setup tests), and so is `rewrite name stop ...` (CoreDNS reads `stop` there as the
    # match type; `rewrite stop name ...` is the form it takes).
    "kubespray-coredns-docs-options.Corefile": (
        "received: stop",
        "cache TTL must be",
        "denial capacity must be",
    ),
}

# What each legacy Corefile's error must say: the replacement, or that nothing replaces it.
LEGACY_HINT = {
    "kubeadm-legacy-upstream.Corefile": "no longer needed",
    "eks-legacy-1.14.Corefile": "no longer needed",
    "k8s-docs-debugging-log-legacy.Corefile": "no longer needed",
    "k8s-docs-federation-legacy.Corefile": '"forward"',
}

HOSTS = "127.0.0.1 localhost\n10.0.0.1 example.org www.example.org\n::1 localhost6\n"


def _blocks(entry: dict[str, object]) -> str:
    """What `kdns check` says it read: one server block per entry of server_blocks."""
    n = len(entry["server_blocks"])  # type: ignore[arg-type]
    return f"{n} server block{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class Prepared:
    corefile: Path
    root: Path


def _provide(ref: str, path: Path, ca: trustme.CA) -> None:
    """Create what `ref` names: nothing for a glob (it must match nothing, as on a fresh
    node), a zone file, a CA bundle or a hosts file."""
    if "*" in ref:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if ref.endswith(".db"):
        shutil.copy(CORPUS / "coredns-blog-custom-dns-file.example.db", path)
    elif ref.endswith(".crt"):
        ca.cert_pem.write_to_path(str(path))
    else:
        path.write_text(HOSTS)


def prepare(entry: dict[str, object], tmp: Path, ca: trustme.CA) -> Prepared:
    text = (CORPUS / str(entry["file"])).read_text()
    root = tmp / "root"
    refs = sorted(entry["files_referenced"], key=len, reverse=True)  # type: ignore[arg-type]
    for ref in refs:
        if ref.startswith("/"):
            target = root / ref.lstrip("/")
            # Whole tokens only: /etc/coredns/hosts must not touch /etc/coredns/hostsfile.
            text = re.sub(rf"(?<![\w/]){re.escape(ref)}(?![\w.])", str(target), text)
        else:
            target = tmp / ref
        _provide(ref, target, ca)
    corefile = tmp / str(entry["file"])
    corefile.write_text(text)
    return Prepared(corefile, root)


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["check", "--conf", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _entries(legacy: bool) -> list[pytest.param]:  # type: ignore[valid-type]
    return [pytest.param(e, id=e["name"]) for e in INDEX if e["legacy"] is legacy]


def test_corpus_is_complete() -> None:
    files = {e["file"] for e in INDEX}
    assert len(INDEX) == 58
    assert sum(e["legacy"] for e in INDEX) == 4
    assert files == {p.name for p in CORPUS.glob("*.Corefile")}
    assert set(COREDNS_REFUSES) <= files and set(LEGACY_HINT) <= files


@pytest.mark.parametrize("entry", _entries(legacy=False))
def test_current_corefile_passes_check(
    entry: dict[str, object], tmp_path: Path, ca: trustme.CA, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = prepare(entry, tmp_path, ca)
    code, out, err = check(prepared.corefile, capsys)
    refused_for = COREDNS_REFUSES.get(str(entry["file"]))
    if refused_for is None:
        assert code == 0, err
        assert out.strip().endswith(f": OK, no errors found ({_blocks(entry)})")
        # One summary line per served (zones, port) pair, each with file:line.
        assert out.count(f"{prepared.corefile}:") >= len(entry["server_blocks"])  # type: ignore[arg-type]
        return
    # Refused as CoreDNS refuses it: on exactly those lines, each with file:line.
    assert code != 0, f"{entry['file']} passes, but CoreDNS refuses it"
    for line in err.strip().splitlines():
        assert re.match(rf"{re.escape(str(prepared.corefile))}:\d+: ", line), line
        assert any(p in line for p in refused_for), f"{entry['file']} fails elsewhere: {line}"


@pytest.mark.parametrize("entry", _entries(legacy=True))
def test_legacy_corefile_is_refused_naming_the_replacement(
    entry: dict[str, object], tmp_path: Path, ca: trustme.CA, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = prepare(entry, tmp_path, ca)
    code, _out, err = check(prepared.corefile, capsys)
    assert code == 1
    assert "Traceback" not in err
    # Every problem is reported, each as file:line; one of them names the replacement.
    lines = err.strip().splitlines()
    for line in lines:
        assert re.match(rf"{re.escape(str(prepared.corefile))}:\d+: ", line), line
    assert any(LEGACY_HINT[str(entry["file"])] in line for line in lines), err

"""The distributions' Corefiles that use `hosts`, unchanged but for where things are on this
machine: k3s (NodeHosts from a ConfigMap), minikube (host.minikube.internal inline) and kOps
(the node's /etc/hosts for its cluster domain). Each passes `kdns check`, then serves: the hosts
names from its hosts data, cluster names from a snapshot, the rest from a fake upstream."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import pytest

from kdns import cli
from kdns.plugins.hosts import HostsPlugin
from tests.support.client import ask, rrs
from tests.support.ports import free_port
from tests.support.server import running_kdns, with_bundled_cluster
from tests.support.upstream import fake_upstream

CORPUS = Path(__file__).parents[1] / "data" / "corefiles"


@dataclass(frozen=True)
class Case:
    file: str
    hosts_file: str | None  # the path the Corefile names, provided under the test's root
    content: str
    name: str
    address: str


CASES = [
    Case(
        "k3s.Corefile",
        "/etc/coredns/NodeHosts",
        "172.18.0.2 k3d-server-0\n172.18.0.3 k3d-agent-0\n",
        "k3d-agent-0.",
        "172.18.0.3",
    ),
    Case("minikube.Corefile", None, "", "host.minikube.internal.", "192.168.49.1"),
    Case(
        "kops-dns-none.Corefile",
        "/rootfs/etc/hosts",
        "127.0.0.1 localhost\n172.20.32.10 api.internal.minimal.example.com\n",
        "api.internal.minimal.example.com.",
        "172.20.32.10",
    ),
]


def localize(case: Case, root: Path, upstream: int) -> str:
    """The Corefile with its paths under `root`, its HTTP endpoints and DNS port on free
    loopback ports, cluster data from a snapshot and `forward` to the fake upstream."""
    text = (CORPUS / case.file).read_text()
    if case.hosts_file is not None:
        target = root / case.hosts_file.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(case.content)
        text = text.replace(case.hosts_file, str(target))
    (root / "etc/coredns/custom").mkdir(parents=True, exist_ok=True)  # k3s imports: none yet
    text = text.replace("/etc/coredns/custom/", f"{root}/etc/coredns/custom/")
    text = text.replace(".:53 {", ".:PORT {\n    bind 127.0.0.1", 1)
    text = re.sub(r"(?m)^(\s+)health\b", rf"\1health 127.0.0.1:{free_port()}", text)
    text = re.sub(r"(?m)^(\s+)ready$", rf"\1ready 127.0.0.1:{free_port()}", text)
    text = text.replace("prometheus :9153", f"prometheus 127.0.0.1:{free_port()}")
    text = re.sub(r"lameduck \d+s", "lameduck 1ms", text)  # the test need not wait to stop
    text = re.sub(r"(?m)^(\s+)pods insecure$", r"\1pods insecure\n\1snapshot cluster.yaml", text)
    return text.replace("forward . /etc/resolv.conf", f"forward . 127.0.0.1:{upstream}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
async def test_distribution_corefile_checks_and_serves_its_hosts(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_bundled_cluster(tmp_path)
    async with fake_upstream() as up:
        up.add("example.net.", "A", "192.0.2.80")
        text = localize(case, tmp_path, up.port)
        checked = tmp_path / "Corefile.checked"
        checked.write_text(text.replace("PORT", "53"))
        assert cli.main(["check", "--conf", str(checked)]) == 0, capsys.readouterr().err
        assert "hosts" in capsys.readouterr().out
        async with running_kdns(text, tmp_path) as srv:
            reply = await ask(srv.port, case.name, "A")
            assert reply.flags & dns.flags.AA
            assert rrs(reply) == [(case.name, "A", case.address)]
            # hosts' ttl (k3s 60, minikube 3600, kOps 30) as capped by `cache 30` in front.
            assert reply.answer[0].ttl == 30
            ptr = await ask(
                srv.port, ".".join(reversed(case.address.split("."))) + ".in-addr.arpa.", "PTR"
            )
            assert rrs(ptr)[0][2] == case.name
            # The rest of the chain still answers: kubernetes, then forward (fallthrough).
            cluster = await ask(srv.port, "kubernetes.default.svc.cluster.local.", "A")
            assert rrs(cluster)[0][2] == "10.96.0.1"
            assert rrs(await ask(srv.port, "example.net.", "A"))[0][2] == "192.0.2.80"
            if case.hosts_file is not None:
                # The file changes (a new node joins): re-read on the next reload tick.
                target = tmp_path / case.hosts_file.lstrip("/")
                joined = (
                    case.name.replace("0", "1", 1) if "k3d" in case.name else "new." + case.name
                )
                target.write_text(case.content + f"172.18.9.9 {joined}\n")
                assert srv.app.instance is not None
                (plugin,) = (p for p in srv.app.instance.plugins if isinstance(p, HostsPlugin))
                assert await plugin.refresh() is True
                assert rrs(await ask(srv.port, joined, "A")) == [(joined, "A", "172.18.9.9")]

"""`autopath @kubernetes` with queries sent from a pod's address.

The conformance fixture's pod podns/foo has IP 10.240.0.1. Here that IP is rewritten to the
loopback address 127.0.0.2 in the fixture and queries are sent from 127.0.0.2, so the server sees
the pod's address without any change to host networking. A client with no pod uses 127.0.0.3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.rcode
import pytest
import yaml
from prometheus_client import CollectorRegistry

from kdns.config import from_text
from kdns.corefile import CorefileError
from kdns.server import app
from tests.conformance.test_conformance import SUITE, check, corefile_for, effective_config
from tests.support.client import ask, rrs
from tests.support.server import Running, running_kdns
from tests.support.upstream import FakeUpstream, fake_upstream

POD_IP = "10.240.0.1"
SOURCES = {POD_IP: "127.0.0.2", "10.9.9.9": "127.0.0.3"}
CASES = [c for c in SUITE["cases"] if c["group"] == "autopath"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Running, FakeUpstream]]:
    fixture = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": SUITE["fixture"]})
    (tmp_path / "fixture.yaml").write_text(fixture.replace(POD_IP, SOURCES[POD_IP]))
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = corefile_for(effective_config(CASES[0]), up.port)
        async with running_kdns(corefile, tmp_path) as srv:
            yield srv, up


def success_count(srv: Running) -> float | None:
    return srv.registry.get_sample_value(
        "coredns_autopath_success_total", {"server": "dns://127.0.0.1:" + str(srv.port)}
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
async def test_autopath_conformance_cases(case: dict[str, Any], server: Any) -> None:
    srv, _ = server
    msg = await ask(srv.port, case["qname"], case["qtype"], source=SOURCES[case["client_ip"]])
    check(case, msg)


async def test_search_walk_reaches_upstream_names_and_counts(server: Any) -> None:
    srv, up = server
    pod = SOURCES[POD_IP]
    msg = await ask(srv.port, "www.example.test.podns.svc.cluster.local.", "A", source=pod)
    assert msg.rcode() == dns.rcode.NOERROR
    assert rrs(msg) == [
        ("www.example.test.podns.svc.cluster.local.", "CNAME", "www.example.test."),
        ("www.example.test.", "A", "192.0.2.10"),
    ]
    assert up.counts[("www.example.test.", "A")] == 1
    assert success_count(srv) == 1
    # Nothing exists anywhere: the first reply (NXDOMAIN for the asked name) comes back.
    msg = await ask(srv.port, "nothing.podns.svc.cluster.local.", "A", source=pod)
    assert msg.rcode() == dns.rcode.NXDOMAIN and rrs(msg) == []
    # Not the first search element of this client: answered as asked.
    msg = await ask(srv.port, "svc1.testns.testns.svc.cluster.local.", "A", source=pod)
    assert msg.rcode() == dns.rcode.NXDOMAIN
    # The same question from an address without a pod: no search path.
    msg = await ask(
        srv.port, "www.example.test.podns.svc.cluster.local.", "A", source=SOURCES["10.9.9.9"]
    )
    assert msg.rcode() == dns.rcode.NXDOMAIN
    assert success_count(srv) == 1


@pytest.mark.parametrize(
    ("kubernetes", "message"),
    [
        ("kubernetes cluster.local {\n  pods insecure\n }", "requires kubernetes pods verified"),
        ("", "needs a kubernetes directive"),
    ],
)
def test_autopath_needs_kubernetes_with_verified_pods(kubernetes: str, message: str) -> None:
    text = f".:1053 {{\n autopath @kubernetes\n {kubernetes}\n}}\n"
    with pytest.raises(CorefileError, match=message):
        app.build(from_text(text, "Corefile"), CollectorRegistry())


def test_autopath_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(CorefileError, match="usage: autopath"):
        from_text(".:1053 {\n autopath\n}\n", "Corefile")
    with pytest.raises(CorefileError, match="@etcd is not supported"):
        from_text(".:1053 {\n autopath @etcd\n}\n", "Corefile")
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\nsearch a.test b.test\n")
    conf = from_text(".:1053 {\n autopath resolv.conf\n}\n", str(tmp_path / "Corefile"))
    entry = conf.blocks[0].get("autopath")
    assert entry is not None and entry.config.search == ("a.test.", "b.test.", "")

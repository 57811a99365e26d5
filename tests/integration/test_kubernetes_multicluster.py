"""`multicluster` with the live source: ServiceImports listed and watched from a fake API server.

kdns runs in-process with the real kubernetes-asyncio client against `tests/support/fakeapi.py`;
answers are read with dnspython over UDP.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest
import yaml

from kdns.sources import kubernetes as source_mod
from tests.integration.test_kubernetes_source import FAST, answer, answers, eventually, k8s_plugin
from tests.support.client import ask
from tests.support.fakeapi import FakeApiServer, endpoint_slice, namespace, service
from tests.support.server import running_kdns

pytestmark = pytest.mark.timeout(60)

SVC1 = "svc1.testns.svc.clusterset.local"
HDLS = "hdls1.testns.svc.clusterset.local"


@pytest.fixture(autouse=True)
def fast_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_mod, "DEFAULT_TIMING", FAST)


def service_import(
    name: str, ips: list[str] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "ClusterSetIP" if ips else "Headless"}
    if ips:
        spec["ips"] = ips
    spec["ports"] = [{"name": "http", "port": 80, "protocol": "TCP"}]
    meta = {"name": name, "namespace": "testns", "labels": labels or {}}
    return {"kind": "ServiceImport", "metadata": meta, "spec": spec}


def mc_slice(name: str, service_name: str, cluster: str, ips: list[str]) -> dict[str, Any]:
    obj = endpoint_slice(name, service_name, ips, namespace="testns")
    obj["metadata"]["labels"] = {
        "multicluster.kubernetes.io/service-name": service_name,
        "multicluster.kubernetes.io/source-cluster": cluster,
    }
    return obj


def corefile(url: str, extra: str = "multicluster clusterset.local") -> str:
    return f"""
.:PORT {{
    kubernetes cluster.local clusterset.local {{
        endpoint {url}
        startup_timeout 3s
        {extra}
    }}
}}
"""


async def started(objs: list[dict[str, Any]]) -> FakeApiServer:
    api = FakeApiServer()
    for obj in objs:
        api.apply(obj)
    await api.up()
    return api


BASE = [
    namespace("testns"),
    service("svc1", namespace="testns", cluster_ip="10.96.0.1"),
    service_import("svc1", ["10.0.0.1"]),
    service_import("hdls1"),
    mc_slice("hdls1-c1", "hdls1", "cluster1", ["172.0.0.2", "172.0.0.3"]),
]


async def test_imports_are_listed_and_watched(tmp_path: Path) -> None:
    api = await started(BASE)
    try:
        async with running_kdns(corefile(api.url), tmp_path) as run:
            assert k8s_plugin(run).ready()
            assert await answer(run.port, SVC1) == (dns.rcode.NOERROR, {"10.0.0.1"})
            # The same name in the cluster zone is the Service.
            local = "svc1.testns.svc.cluster.local"
            assert await answer(run.port, local) == (dns.rcode.NOERROR, {"10.96.0.1"})
            assert await answer(run.port, HDLS) == (dns.rcode.NOERROR, {"172.0.0.2", "172.0.0.3"})

            # Watch events: a new cluster's slice, a changed import, a new and a deleted one.
            api.apply(mc_slice("hdls1-c2", "hdls1", "cluster2", ["172.1.0.9"]))
            await answers(run.port, "172-1-0-9.cluster2." + HDLS, {"172.1.0.9"})
            await answers(run.port, HDLS, {"172.0.0.2", "172.0.0.3", "172.1.0.9"})
            api.apply(service_import("svc1", ["10.0.0.2"]))
            await answers(run.port, SVC1, {"10.0.0.2"})
            api.apply(service_import("new", ["10.0.0.7"]))
            await answers(run.port, "new.testns.svc.clusterset.local", {"10.0.0.7"})
            api.delete("ServiceImport", "testns", "svc1")
            await answers(run.port, SVC1, set(), dns.rcode.NXDOMAIN)

            [listed] = api.list_requests("serviceimports")
            assert listed.path == "/apis/multicluster.x-k8s.io/v1alpha1/serviceimports"
            assert api.watch_requests("serviceimports")
    finally:
        await api.down()


async def test_imports_are_not_watched_without_multicluster(tmp_path: Path) -> None:
    api = await started(BASE)
    try:
        async with running_kdns(corefile(api.url, extra=""), tmp_path) as run:
            assert k8s_plugin(run).ready()
            # clusterset.local is then an ordinary cluster zone: the Service answers.
            assert await answer(run.port, SVC1) == (dns.rcode.NOERROR, {"10.96.0.1"})
            assert not api.list_requests("serviceimports")
    finally:
        await api.down()


async def test_labels_select_imports_and_a_missing_crd_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = await started([*BASE, service_import("team", ["10.0.0.9"], {"dns": "yes"})])
    api.fail("serviceimports", 404, "NotFound")  # a cluster without the CRD
    try:
        text = corefile(api.url, "multicluster clusterset.local\n        labels dns=yes")
        text = text.replace("startup_timeout 3s", "startup_timeout 200ms")
        with caplog.at_level(logging.ERROR, logger="kdns.kubernetes"):
            async with running_kdns(text, tmp_path) as run:
                plugin = k8s_plugin(run)
                assert not plugin.ready()  # never NXDOMAIN from a half-read clusterset

                async def retried() -> bool:
                    return len(api.list_requests("serviceimports")) >= 3

                await eventually(retried, "repeated ServiceImport lists")
                hints = [r for r in caplog.records if "ServiceImport CRD" in r.getMessage()]
                assert len(hints) == 1
                api.heal()
                await answers(run.port, "team.testns.svc.clusterset.local", {"10.0.0.9"})
                assert plugin.ready()
                assert await answer(run.port, SVC1) == (dns.rcode.NXDOMAIN, set())
                selectors = {r.query.get("labelSelector") for r in api.requests}
                assert selectors == {"dns=yes", None}  # Namespaces are listed unfiltered
    finally:
        await api.down()


async def test_external_name_to_a_clusterset_name_is_followed(tmp_path: Path) -> None:
    """A CNAME into a multicluster zone is followed with that zone's rules (the import)."""
    objs = [
        *BASE,
        {
            "kind": "Service",
            "metadata": {"name": "ext", "namespace": "testns"},
            "spec": {"type": "ExternalName", "externalName": SVC1},
        },
    ]
    (tmp_path / "snap.yaml").write_text(yaml.safe_dump({"kind": "List", "items": objs}))
    text = """
.:PORT {
    kubernetes cluster.local clusterset.local {
        snapshot snap.yaml
        multicluster clusterset.local
    }
}
"""
    async with running_kdns(text, tmp_path) as run:
        msg = await ask(run.port, "ext.testns.svc.cluster.local", "A")
        got = [(rrset.rdtype, rd.to_text()) for rrset in msg.answer for rd in rrset]
        assert got == [(dns.rdatatype.CNAME, SVC1 + "."), (dns.rdatatype.A, "10.0.0.1")]

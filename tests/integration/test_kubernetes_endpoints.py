"""`endpoint URL URL...`: several API servers of one cluster, used in turn when one is down.

kdns runs in-process with the real kubernetes-asyncio client against two fake API servers
(`tests/support/fakeapi.py`) holding the same objects, as two API servers over one etcd do;
answers are read with dnspython over UDP.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dns.rcode
import pytest

from kdns import config
from kdns.corefile import CorefileError
from kdns.sources import kubernetes as source_mod
from tests.integration.test_kubernetes_source import (
    FAST,
    WEB,
    answer,
    answers,
    base_objects,
    corefile,
    eventually,
    k8s_plugin,
)
from tests.support.fakeapi import FakeApiServer, service
from tests.support.server import running_kdns

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def fast_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_mod, "DEFAULT_TIMING", FAST)


async def api_server() -> FakeApiServer:
    api = FakeApiServer()
    for obj in base_objects():  # the same history on each: the same resource versions
        api.apply(obj)
    await api.up()
    return api


async def test_first_endpoint_down_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down, up = await api_server(), await api_server()
    await down.down()  # keeps its port; nothing listens there
    try:
        with caplog.at_level(logging.WARNING, logger="kdns.kubernetes"):
            async with running_kdns(corefile(f"{down.url} {up.url}"), tmp_path) as run:
                assert k8s_plugin(run).ready()
                assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})
                for api in (down, up):
                    api.apply(service("new", cluster_ip="10.96.0.30"))
                await answers(run.port, "new.default.svc.cluster.local", {"10.96.0.30"})
        switched = [r.getMessage() for r in caplog.records if "switching to" in r.getMessage()]
        # One outage moves every reflector once, not once per reflector.
        assert switched == [f"kubernetes: API server {down.url} unreachable; switching to {up.url}"]
        assert not down.requests
    finally:
        await up.down()


async def test_fails_over_when_the_current_one_goes_down(tmp_path: Path) -> None:
    first, second = await api_server(), await api_server()
    try:
        async with running_kdns(corefile(f"{first.url} {second.url}"), tmp_path) as run:
            assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})

            async def watching() -> bool:
                return bool(first.watch_requests("services"))

            await eventually(watching, "a watch on the first API server")
            assert not second.requests
            await first.down()
            # Written to the cluster after the first server died: seen through the second.
            for api in (first, second):  # one storage behind both
                api.apply(service("later", cluster_ip="10.96.0.31"))
            await answers(run.port, "later.default.svc.cluster.local", {"10.96.0.31"})
            assert second.watch_requests("services")
            # The answers never went away meanwhile.
            assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})
            # And back: the second goes down, the first is up again.
            await first.up()
            await second.down()
            for api in (first, second):
                api.apply(service("again", cluster_ip="10.96.0.32"))
            await answers(run.port, "again.default.svc.cluster.local", {"10.96.0.32"})
    finally:
        await first.down()
        await second.down()


def test_endpoint_urls_are_checked(tmp_path: Path) -> None:
    def parse(line: str) -> None:
        text = f".:53 {{\n    kubernetes cluster.local {{\n        {line}\n    }}\n}}\n"
        config.from_text(text, "Corefile")

    parse("endpoint http://127.0.0.1:8080 https://127.0.0.1:6443")
    with pytest.raises(CorefileError, match=r"^Corefile:3: .*usage: endpoint URL"):
        parse("endpoint")
    with pytest.raises(CorefileError, match=r"^Corefile:3: .*'localhost:6443'"):
        parse("endpoint http://127.0.0.1:8080 localhost:6443")

"""The live Kubernetes source against a fake API server that misbehaves, through real DNS.

kdns runs in-process with the real kubernetes-asyncio client talking HTTP(S) to
`tests/support/fakeapi.py`; answers are read with dnspython over UDP. Reflector timings are
shortened (read timeout, backoff) so faults are noticed in well under a second.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import dns.message
import dns.rcode
import pytest

from kdns.sources import kubeapi
from kdns.sources import kubernetes as source_mod
from tests.support import fakeapi
from tests.support.client import ask
from tests.support.fakeapi import FakeApiServer, endpoint_slice, namespace, pod, service
from tests.support.ports import free_port
from tests.support.server import Running, running_kdns

pytestmark = pytest.mark.timeout(60)

FAST = source_mod.Timing(
    watch_timeout=5.0,
    read_timeout=0.6,
    connect_timeout=1.0,
    backoff_initial=0.05,
    backoff_max=0.3,
    page_size=3,
)
DEADLINE = 8.0


@pytest.fixture(autouse=True)
def fast_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_mod, "DEFAULT_TIMING", FAST)


def corefile(url: str | None, extra: str = "") -> str:
    endpoint = f"endpoint {url}" if url else ""
    return f"""
.:PORT {{
    kubernetes cluster.local in-addr.arpa {{
        {endpoint}
        startup_timeout 3s
        {extra}
    }}
}}
"""


def base_objects() -> list[dict[str, Any]]:
    return [
        namespace("default"),
        service("web", cluster_ip="10.96.0.10"),
        service("db", cluster_ip=None),
        endpoint_slice("db-abc", "db", ["10.1.0.1", "10.1.0.2"]),
    ]


async def started_api(objs: list[dict[str, Any]] | None = None, **kw: Any) -> FakeApiServer:
    api = FakeApiServer(**kw)
    for obj in base_objects() if objs is None else objs:
        api.apply(obj)
    await api.up()
    return api


def addresses(msg: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in msg.answer for rd in rrset if rrset.rdtype in (1, 28)}


async def answer(port: int, name: str, qtype: str = "A") -> tuple[int, set[str]]:
    msg = await ask(port, name, qtype)
    return msg.rcode(), addresses(msg)


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE
) -> None:
    """Poll `check` until it holds; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


async def answers(
    port: int, name: str, ips: set[str], rcode: int | None = dns.rcode.NOERROR
) -> None:
    """Wait until `name` answers `ips` (with `rcode`, unless None: any rcode but SERVFAIL)."""

    async def check() -> bool:
        got_rcode, got = await answer(port, name)
        if rcode is None:
            return got == ips and got_rcode != dns.rcode.SERVFAIL
        return (got_rcode, got) == (rcode, ips)

    want = "any" if rcode is None else dns.rcode.to_text(rcode)
    await eventually(check, f"{name} -> {want} {sorted(ips)}")


def k8s_plugin(run: Running) -> Any:
    assert run.app.instance is not None
    return next(p for p in run.app.instance.plugins if p.name == "kubernetes")


WEB = "web.default.svc.cluster.local"
DB = "db.default.svc.cluster.local"


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    server = await started_api()
    try:
        yield server
    finally:
        await server.down()


async def test_create_modify_delete_reach_answers(api: FakeApiServer, tmp_path: Path) -> None:
    async with running_kdns(corefile(api.url), tmp_path) as run:
        assert k8s_plugin(run).ready()
        assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})
        assert await answer(run.port, DB) == (dns.rcode.NOERROR, {"10.1.0.1", "10.1.0.2"})

        api.apply(service("new", cluster_ip="10.96.0.20"))
        await answers(run.port, "new.default.svc.cluster.local", {"10.96.0.20"})

        api.apply(service("web", cluster_ip="10.96.0.11"))
        await answers(run.port, WEB, {"10.96.0.11"})

        api.apply(endpoint_slice("db-abc", "db", ["10.1.0.2", "10.1.0.3"]))
        await answers(run.port, DB, {"10.1.0.2", "10.1.0.3"})
        api.apply(endpoint_slice("db-def", "db", ["10.1.0.9"]))
        await answers(run.port, DB, {"10.1.0.2", "10.1.0.3", "10.1.0.9"})
        api.delete("EndpointSlice", "default", "db-abc")
        await answers(run.port, DB, {"10.1.0.9"})

        api.delete("Service", "default", "new")
        await answers(run.port, "new.default.svc.cluster.local", set(), dns.rcode.NXDOMAIN)

        # The reflector's protocol: watch from the list's version, bookmarks, server timeout.
        watch = api.watch_requests("services")[0]
        listed = api.list_requests("services")[0]
        assert watch.query["allowWatchBookmarks"].lower() == "true"
        assert 5 <= int(watch.query["timeoutSeconds"]) <= 8
        assert int(watch.query["resourceVersion"]) >= 100
        assert listed.query["limit"] == "3"
        assert not api.list_requests("pods"), "pods are watched only when a mode needs them"


async def test_index_changes_show_through_the_cache_at_once(
    api: FakeApiServer, tmp_path: Path
) -> None:
    """With kubeadm's `cache 30`, a change is answered as soon as the index publishes it:
    cached cluster answers (and the bytes re-served from them) end with the index objects
    they came from, not 30 s later."""
    conf = f"""
.:PORT {{
    cache 30
    kubernetes cluster.local in-addr.arpa {{
        endpoint {api.url}
        startup_timeout 3s
        ttl 30
    }}
}}
"""
    new = "new.default.svc.cluster.local"
    async with running_kdns(conf, tmp_path) as run:
        plugin = k8s_plugin(run)
        for _ in range(3):  # cached, and asked often enough to be re-served from bytes
            assert await answer(run.port, new) == (dns.rcode.NXDOMAIN, set())
            assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})
            assert await answer(run.port, DB) == (dns.rcode.NOERROR, {"10.1.0.1", "10.1.0.2"})

        async def published(key: tuple[str, str], want: bool = True) -> bool:
            return (key in plugin.index.services) == want

        api.apply(service("new", cluster_ip="10.96.0.20"))
        await eventually(lambda: published(("default", "new")), "the index has the service")
        assert await answer(run.port, new) == (dns.rcode.NOERROR, {"10.96.0.20"})

        generation = plugin.index.generation
        api.apply(service("web", cluster_ip="10.96.0.11"))

        async def moved() -> bool:
            return bool(plugin.index.generation != generation)

        await eventually(moved, "the index published the change")
        assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.11"})

        generation = plugin.index.generation
        api.apply(endpoint_slice("db-abc", "db", ["10.1.0.3"]))
        await eventually(moved, "the index published the endpoints")
        assert await answer(run.port, DB) == (dns.rcode.NOERROR, {"10.1.0.3"})

        api.delete("Service", "default", "new")
        await eventually(lambda: published(("default", "new"), False), "the service is gone")
        assert await answer(run.port, new) == (dns.rcode.NXDOMAIN, set())


async def test_old_snapshots_are_not_kept_alive(api: FakeApiServer, tmp_path: Path) -> None:
    """Replies memoised for the fast path must not pin the index snapshot they came from."""
    from kdns.cluster.index import ClusterIndex

    async with running_kdns(corefile(api.url), tmp_path) as run:
        for i in range(12):
            api.apply(service(f"churn{i}", cluster_ip=f"10.96.7.{i}"))
            await answers(run.port, f"churn{i}.default.svc.cluster.local", {f"10.96.7.{i}"})
            await answer(run.port, WEB)  # memoised against the snapshot of this round
        gc.collect()
        alive = [o for o in gc.get_objects() if isinstance(o, ClusterIndex)]
        assert len(alive) <= 3, f"{len(alive)} index snapshots still referenced"


async def test_not_ready_endpoints_are_not_served(api: FakeApiServer, tmp_path: Path) -> None:
    api.apply(service("slow", cluster_ip=None))
    api.apply(endpoint_slice("slow-1", "slow", ["10.2.0.1"], ready=False))
    async with running_kdns(corefile(api.url), tmp_path) as run:
        name = "slow.default.svc.cluster.local"
        rcode, ips = await answer(run.port, name)
        assert ips == set() and rcode != dns.rcode.SERVFAIL
        api.apply(endpoint_slice("slow-1", "slow", ["10.2.0.1"], ready=True))
        await answers(run.port, name, {"10.2.0.1"})
        api.apply(endpoint_slice("slow-1", "slow", ["10.2.0.1"], ready=False))
        await answers(run.port, name, set(), None)


async def test_paged_list_serves_everything(tmp_path: Path) -> None:
    objs = [service(f"s{i}", cluster_ip=f"10.96.1.{i}") for i in range(10)]
    api = await started_api([namespace("default"), *objs])
    try:
        async with running_kdns(corefile(api.url), tmp_path) as run:
            for i in range(10):
                assert await answer(run.port, f"s{i}.default.svc.cluster.local") == (
                    dns.rcode.NOERROR,
                    {f"10.96.1.{i}"},
                )
            pages = api.list_requests("services")
            assert len(pages) == 4 and pages[1].query["continue"]
    finally:
        await api.down()


async def test_closed_streams_resume_from_last_version_without_relist(
    api: FakeApiServer, tmp_path: Path
) -> None:
    async with running_kdns(corefile(api.url), tmp_path) as run:
        for i in range(3):
            before = len(api.watch_requests("services"))
            api.close_watches()

            async def rewatched(n: int = before) -> bool:
                return len(api.watch_requests("services")) > n

            await eventually(rewatched, "the services watch to be reopened")
            api.apply(service(f"after{i}", cluster_ip=f"10.96.2.{i}"))
            await answers(run.port, f"after{i}.default.svc.cluster.local", {f"10.96.2.{i}"})
        assert len(api.list_requests("services")) == 1  # no relist was needed
        last = api.watch_requests("services")[-1]
        assert int(last.query["resourceVersion"]) > int(
            api.watch_requests("services")[0].query["resourceVersion"]
        )


async def test_stalled_stream_is_noticed_and_resumed(api: FakeApiServer, tmp_path: Path) -> None:
    async with running_kdns(corefile(api.url), tmp_path) as run:
        before = len(api.watch_requests("services"))
        api.stall()
        api.apply(service("late", cluster_ip="10.96.3.1"))

        async def reconnected() -> bool:
            return len(api.watch_requests("services")) > before

        # Only the client read timeout can notice: the connection stays open and silent.
        await eventually(reconnected, "the client to give up on the silent stream")
        api.stall(False)
        await answers(run.port, "late.default.svc.cluster.local", {"10.96.3.1"})


async def test_relist_after_410_applies_deletions_made_in_the_gap(
    api: FakeApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api.apply(service("doomed", cluster_ip="10.96.4.1"))
    async with running_kdns(corefile(api.url), tmp_path) as run:
        doomed = "doomed.default.svc.cluster.local"
        assert await answer(run.port, doomed) == (dns.rcode.NOERROR, {"10.96.4.1"})
        await api.down()
        # While kdns is disconnected: a deletion, an addition, and the history is compacted.
        api.delete("Service", "default", "doomed")
        api.delete("EndpointSlice", "default", "db-abc")
        api.apply(service("born", cluster_ip="10.96.4.2"))
        api.compact()
        # Still serving the last good data while the API server is away.
        assert await answer(run.port, doomed) == (dns.rcode.NOERROR, {"10.96.4.1"})
        await api.up()
        await answers(run.port, doomed, set(), dns.rcode.NXDOMAIN)
        await answers(run.port, "born.default.svc.cluster.local", {"10.96.4.2"})
        await answers(run.port, DB, set(), None)
        assert len(api.list_requests("services")) >= 2
        assert k8s_plugin(run).ready()


async def test_error_410_event_on_an_open_stream_relists(
    api: FakeApiServer, tmp_path: Path
) -> None:
    async with running_kdns(corefile(api.url), tmp_path) as run:
        lists = len(api.list_requests("services"))
        api.stall()
        api.delete("Service", "default", "web")  # held back by the stall, then compacted away
        api.stall(False)
        api.expire_watches()
        await answers(run.port, WEB, set(), dns.rcode.NXDOMAIN)
        assert len(api.list_requests("services")) > lists


async def test_plain_http_410_on_watch_relists(api: FakeApiServer, tmp_path: Path) -> None:
    async with running_kdns(corefile(api.url), tmp_path) as run:
        api.fail("services", 410, "Expired")
        api.close_watches()
        api.delete("Service", "default", "web")

        async def failed_once() -> bool:
            return any(r.is_watch for r in api.requests[-3:])

        await eventually(failed_once, "a watch to hit the HTTP 410")
        api.heal()
        await answers(run.port, WEB, set(), dns.rcode.NXDOMAIN)


async def test_outage_keeps_serving_last_good_index(api: FakeApiServer, tmp_path: Path) -> None:
    async with running_kdns(corefile(api.url), tmp_path) as run:
        await api.down()
        for _ in range(5):  # several backoff rounds with the API server gone
            assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})
            assert await answer(run.port, DB) == (dns.rcode.NOERROR, {"10.1.0.1", "10.1.0.2"})
            assert k8s_plugin(run).ready()
            await asyncio.sleep(0.1)
        api.apply(service("back", cluster_ip="10.96.5.1"))
        await api.up()
        await answers(run.port, "back.default.svc.cluster.local", {"10.96.5.1"})


async def test_servfail_until_synced_and_rbac_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = await started_api()
    api.fail("endpointslices", 403)
    try:
        ready_port = free_port()
        text = corefile(api.url).replace("startup_timeout 3s", "startup_timeout 200ms")
        text = text.replace(".:PORT {", f".:PORT {{\n    ready 127.0.0.1:{ready_port}")
        with caplog.at_level(logging.ERROR, logger="kdns.kubernetes"):
            async with running_kdns(text, tmp_path) as run, aiohttp.ClientSession() as http:
                plugin = k8s_plugin(run)
                assert not plugin.ready()
                async with http.get(f"http://127.0.0.1:{ready_port}/ready") as resp:
                    assert resp.status == 503 and "kubernetes" in await resp.text()
                # Never a false NXDOMAIN before the first sync (CoreDNS: a name error becomes
                # SERVFAIL): the headless service's endpoints are not listed yet.
                assert (await answer(run.port, DB))[0] == dns.rcode.SERVFAIL
                assert (await answer(run.port, "nope.default.svc.cluster.local"))[
                    0
                ] == dns.rcode.SERVFAIL

                async def retried() -> bool:
                    return len(api.list_requests("endpointslices")) >= 3

                await eventually(retried, "repeated list attempts under 403")
                denied = [r for r in caplog.records if "denied" in r.getMessage()]
                assert len(denied) == 1
                assert "list and watch on endpointslices" in denied[0].getMessage()
                api.heal()
                await answers(run.port, DB, {"10.1.0.1", "10.1.0.2"})
                assert plugin.ready()
                async with http.get(f"http://127.0.0.1:{ready_port}/ready") as resp:
                    assert resp.status == 200
    finally:
        await api.down()


async def test_api_down_at_start_then_up(tmp_path: Path) -> None:
    api = FakeApiServer()
    for obj in base_objects():
        api.apply(obj)
    await api.up()
    await api.down()  # keeps its port; nothing listens
    try:
        text = corefile(api.url).replace("startup_timeout 3s", "startup_timeout 100ms")
        async with running_kdns(text, tmp_path) as run:
            assert (await answer(run.port, WEB))[0] == dns.rcode.SERVFAIL  # nothing listed yet
            await api.up()
            await answers(run.port, WEB, {"10.96.0.10"})
    finally:
        await api.down()


async def test_label_selectors_go_to_the_api(tmp_path: Path) -> None:
    api = await started_api(
        [
            namespace("default", {"team": "a"}),
            service("web", cluster_ip="10.96.0.10", labels={"dns": "yes"}),
            service("hidden", cluster_ip="10.96.0.11"),
        ]
    )
    try:
        extra = "labels dns=yes\n        namespace_labels team=a"
        async with running_kdns(corefile(api.url, extra), tmp_path) as run:
            await answers(run.port, WEB, {"10.96.0.10"})
            rcode, _ = await answer(run.port, "hidden.default.svc.cluster.local")
            assert rcode == dns.rcode.NXDOMAIN

            async def watching() -> bool:
                return all(api.watch_requests(p) for p in ("services", "endpointslices"))

            await eventually(watching, "both watches to open")
            for plural in ("services", "endpointslices"):
                assert api.list_requests(plural)[0].query["labelSelector"] == "dns=yes"
                assert api.watch_requests(plural)[0].query["labelSelector"] == "dns=yes"
            assert api.list_requests("namespaces")[0].query["labelSelector"] == "team=a"
            # A service losing the selected label is a DELETED event for this watch.
            api.apply(service("web", cluster_ip="10.96.0.10"))
            await answers(run.port, WEB, set(), dns.rcode.NXDOMAIN)
    finally:
        await api.down()


async def test_pods_verified_watches_running_pods(tmp_path: Path) -> None:
    api = await started_api([*base_objects(), pod("p1", "10.4.0.5")])
    try:
        async with running_kdns(corefile(api.url, "pods verified"), tmp_path) as run:
            name = "10-4-0-5.default.pod.cluster.local"
            assert await answer(run.port, name) == (dns.rcode.NOERROR, {"10.4.0.5"})
            selector = api.list_requests("pods")[0].query["fieldSelector"]
            assert selector == source_mod.POD_FIELD_SELECTOR
            assert api.watch_requests("pods")[0].query["fieldSelector"] == selector
            api.apply(pod("p1", "10.4.0.5", phase="Succeeded"))  # leaves the field selector
            await answers(run.port, name, set(), dns.rcode.NXDOMAIN)
    finally:
        await api.down()


async def test_dns_programming_duration_recorded(api: FakeApiServer, tmp_path: Path) -> None:
    async with running_kdns(corefile(api.url), tmp_path) as run:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        ann = {"endpoints.kubernetes.io/last-change-trigger-time": stamp}
        api.apply(endpoint_slice("db-abc", "db", ["10.1.0.7"], annotations=ann))
        await answers(run.port, DB, {"10.1.0.7"})

        def count() -> float:
            value = run.registry.get_sample_value(
                "coredns_kubernetes_dns_programming_duration_seconds_count",
                {"service_kind": "headless_with_selector"},
            )
            return value or 0.0

        async def recorded() -> bool:
            return count() >= 1

        await eventually(recorded, "a programming-duration observation")
        total = run.registry.get_sample_value(
            "coredns_kubernetes_dns_programming_duration_seconds_sum",
            {"service_kind": "headless_with_selector"},
        )
        assert total is not None and 0 <= total < 5


# -- configuration paths ----------------------------------------------------------------------
async def test_in_cluster_https_with_rotating_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trustme = pytest.importorskip("trustme")
    from kubernetes_asyncio.config import incluster_config

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    sa = tmp_path / "sa"
    sa.mkdir()
    ca.cert_pem.write_to_path(str(sa / "ca.crt"))
    (sa / "token").write_text("token-one")
    monkeypatch.setattr(kubeapi, "SERVICE_ACCOUNT_DIR", sa)
    # Re-read the token at every request, so rotation is visible without waiting a minute.
    monkeypatch.setattr(incluster_config, "TOKEN_REFRESH_PERIOD", datetime.timedelta(0))

    api = await started_api(ssl_context=server_ctx, token="token-one")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
    try:
        async with running_kdns(corefile(None), tmp_path) as run:
            assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})
            assert api.requests[0].headers["Authorization"] == "Bearer token-one"
            (sa / "token").write_text("token-two")
            api.token = "token-two"
            api.close_watches()
            api.apply(service("rotated", cluster_ip="10.96.6.1"))
            await answers(run.port, "rotated.default.svc.cluster.local", {"10.96.6.1"})
            assert api.requests[-1].headers["Authorization"] == "Bearer token-two"
    finally:
        await api.down()


async def test_kubeconfig_with_context(tmp_path: Path, api: FakeApiServer) -> None:
    (tmp_path / "kubeconfig").write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "{api.url}"}}
- name: other
  cluster: {{server: "http://127.0.0.1:1"}}
users:
- name: kdns
  user: {{token: "kube-token"}}
contexts:
- name: wanted
  context: {{cluster: fake, user: kdns}}
- name: wrong
  context: {{cluster: other, user: kdns}}
current-context: wrong
"""
    )
    api.token = "kube-token"
    async with running_kdns(corefile(None, "kubeconfig kubeconfig wanted"), tmp_path) as run:
        assert await answer(run.port, WEB) == (dns.rcode.NOERROR, {"10.96.0.10"})
        assert api.requests[0].headers["Authorization"] == "Bearer kube-token"


def test_fake_selectors_are_independent() -> None:
    assert fakeapi.label_match("a=b,c!=d,e in (x, y),!f", {"a": "b", "e": "y"})
    assert not fakeapi.label_match("a=b", {"a": "c"})
    assert fakeapi.field_match("status.phase!=Failed", {"status": {"phase": "Running"}})


async def test_api_outage_during_endpoint_churn_keeps_answers_coherent(
    api: FakeApiServer, tmp_path: Path
) -> None:
    """Endpoints change every few ms; the API server dies half-way and comes back. Every answer
    is exactly one published state (never a mix, never empty), states never go backwards,
    serving never stops, and after the outage the answers reach the last state."""
    name = "churn.default.svc.cluster.local"
    states = [frozenset({f"10.2.{k}.1", f"10.2.{k}.2"}) for k in range(60)]
    api.apply(service("churn", cluster_ip=None))
    api.apply(endpoint_slice("churn-a", "churn", sorted(states[0])))
    async with running_kdns(corefile(api.url), tmp_path) as run:
        await answers(run.port, name, set(states[0]))
        seen: list[tuple[int, int, frozenset[str]]] = []  # (phase, rcode, addresses)
        phase = 0  # 0 before the outage, 1 during, 2 after
        done = asyncio.Event()

        async def ask_all_the_time() -> None:
            while not done.is_set():
                rcode, got = await answer(run.port, name)
                seen.append((phase, rcode, frozenset(got)))

        asker = asyncio.create_task(ask_all_the_time())
        try:
            for k in range(1, len(states)):
                api.apply(endpoint_slice("churn-a", "churn", sorted(states[k])))
                if k == 20:
                    await api.down()
                    phase = 1
                if k == 40:
                    await api.up()
                    phase = 2
                await asyncio.sleep(0.02)  # the pace of the churn, not a wait for a result
            await answers(run.port, name, set(states[-1]))
        finally:
            done.set()
            await asyncio.wait_for(asker, 5)
    index = {s: k for k, s in enumerate(states)}
    assert all(rcode == dns.rcode.NOERROR for _, rcode, _ in seen), "serving stopped"
    assert all(got in index for _, _, got in seen), "an answer was not a published state"
    order = [index[got] for _, _, got in seen]
    assert order == sorted(order), "answers went back to an older state"
    assert sum(1 for p, _, _ in seen if p == 1) >= 10  # answered all through the outage
    assert max(index[got] for p, _, got in seen if p == 1) <= 20

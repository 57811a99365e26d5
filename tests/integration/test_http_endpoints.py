"""/health, /ready and /metrics over real HTTP against a running kdns."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdns.config import from_text
from kdns.corefile import CorefileError
from kdns.server.app import App
from tests.support.client import ask
from tests.support.http import get, scrape, series
from tests.support.ports import free_port
from tests.support.server import running_kdns
from tests.support.waiting import eventually

SNAPSHOT = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: default}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: default}
  spec:
    type: ClusterIP
    clusterIP: 10.0.0.10
    clusterIPs: [10.0.0.10]
    ports: [{name: http, port: 80, protocol: TCP}]
"""


def corefile(http: dict[str, int], extra: str = "", snapshot: str = "snap.yaml") -> str:
    return f"""\
cluster.local:PORT {{
    bind 127.0.0.1
    errors
    health 127.0.0.1:{http["health"]}
    ready 127.0.0.1:{http["ready"]}
    prometheus 127.0.0.1:{http["metrics"]}
    kubernetes {{
        snapshot {snapshot}
        startup_timeout 0s
    }}
{extra}}}
"""


def ports() -> dict[str, int]:
    return {"health": free_port(), "ready": free_port(), "metrics": free_port()}


async def test_health_and_ready_ok(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    p = ports()
    async with running_kdns(corefile(p), tmp_path):
        assert await get(p["health"], "/health") == (200, "OK")
        assert await get(p["ready"], "/ready") == (200, "OK")
        status, _ = await get(p["health"], "/nope")
        assert status == 404


async def test_ready_names_plugins_not_ready(tmp_path: Path) -> None:
    p = ports()
    async with running_kdns(corefile(p, snapshot="missing.yaml"), tmp_path):
        assert await get(p["ready"], "/ready") == (503, "kubernetes")
        assert await get(p["health"], "/health") == (200, "OK")  # alive, just not ready


async def test_ready_is_503_during_lameduck(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    p = ports()
    text = corefile(p).replace(
        f"health 127.0.0.1:{p['health']}", f"health 127.0.0.1:{p['health']} {{\n lameduck 2s\n}}"
    )
    async with running_kdns(text, tmp_path) as srv:
        srv.app.stop()
        await eventually(lambda: srv.app.lameduck, 5)
        assert await get(p["ready"], "/ready") == (503, "Shutting down")
        assert await get(p["health"], "/health") == (200, "OK")
        reply = await ask(srv.port, "web.default.svc.cluster.local.", "A")
        assert [r.to_text() for r in reply.answer[0]] == ["10.0.0.10"]


async def test_endpoints_share_one_address(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    port = free_port()
    p = {"health": port, "ready": port, "metrics": port}
    async with running_kdns(corefile(p), tmp_path):
        assert await get(port, "/health") == (200, "OK")
        assert await get(port, "/ready") == (200, "OK")
        assert (await get(port, "/metrics"))[0] == 200


async def test_metrics_exact_series(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    p = ports()
    async with running_kdns(corefile(p), tmp_path) as srv:
        for _ in range(3):
            await ask(srv.port, "web.default.svc.cluster.local.", "A")
        await ask(srv.port, "web.default.svc.cluster.local.", "AAAA", tcp=True)
        await ask(srv.port, "nope.default.svc.cluster.local.", "A")
        await ask(srv.port, "web.default.svc.cluster.local.", "HINFO", edns=None)
        await ask(srv.port, "example.org.", "A")  # no block serves it: REFUSED, zone "dropped"
        m = await scrape(p["metrics"])
        assert srv.app.instance is not None
        # Repeated UDP queries were answered from bytes: those hits are counted too.
        assert srv.app.instance.dispatchers[("127.0.0.1", srv.port)].fastpath.hits >= 1

    server = f"dns://127.0.0.1:{srv.port}"
    z = "cluster.local."

    def lab(**kw: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({"server": server, "view": "", **kw}.items()))

    assert series(m, "coredns_dns_requests_total") == {
        lab(zone=z, proto="udp", family="1", type="A"): 4.0,
        lab(zone=z, proto="tcp", family="1", type="AAAA"): 1.0,
        lab(zone=z, proto="udp", family="1", type="other"): 1.0,
        lab(zone="dropped", proto="udp", family="1", type="A"): 1.0,
    }
    assert series(m, "coredns_dns_responses_total") == {
        lab(zone=z, rcode="NOERROR", plugin="kubernetes"): 5.0,
        lab(zone=z, rcode="NXDOMAIN", plugin="kubernetes"): 1.0,
        lab(zone="dropped", rcode="REFUSED", plugin=""): 1.0,
    }
    assert series(m, "coredns_dns_request_duration_seconds_count") == {
        lab(zone=z): 6.0,
        lab(zone="dropped"): 1.0,
    }
    buckets = series(m, "coredns_dns_request_duration_seconds_bucket")
    les = sorted(
        {dict(k)["le"] for k in buckets}, key=lambda s: float("inf") if s == "+Inf" else float(s)
    )
    assert les[:3] == ["0.00025", "0.0005", "0.001"] and les[-2:] == ["8.192", "+Inf"]
    assert len(les) == 17
    assert buckets[lab(zone=z, le="+Inf")] == 6.0
    sizes = series(m, "coredns_dns_request_size_bytes_bucket")
    assert {dict(k)["le"] for k in sizes} >= {"0", "100", "511", "64000", "+Inf"}
    assert sizes[lab(zone=z, proto="tcp", le="100")] == 1.0
    assert series(m, "coredns_dns_response_size_bytes_count")[lab(zone=z, proto="udp")] == 5.0
    assert series(m, "coredns_panics_total") == {(): 0.0}
    enabled = series(m, "coredns_plugin_enabled")
    assert enabled == {lab(zone=z, name=n): 1.0 for n in ("errors", "kubernetes", "prometheus")}
    (build,) = series(m, "coredns_build_info")
    assert dict(build)["version"]
    assert not [k for k in m if k[0].endswith("_created")]  # client_golang has none


async def test_two_servers_in_one_process_do_not_collide(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "snap.yaml").write_text(SNAPSHOT)
    (tmp_path / "b" / "snap.yaml").write_text(SNAPSHOT)
    pa, pb = ports(), ports()
    async with (
        running_kdns(corefile(pa), tmp_path / "a") as a,
        running_kdns(corefile(pb), tmp_path / "b") as b,
    ):
        await ask(a.port, "web.default.svc.cluster.local.", "A")
        ma, mb = await scrape(pa["metrics"]), await scrape(pb["metrics"])
        assert sum(series(ma, "coredns_dns_requests_total").values()) == 1.0
        assert sum(series(mb, "coredns_dns_requests_total").values()) == 0.0
        assert b.registry is not a.registry


async def test_http_address_in_use_fails_start_cleanly(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    p = ports()
    async with running_kdns(corefile(p), tmp_path):
        # A second server wanting the same health address cannot start, and leaves nothing open.
        other = App(from_text(corefile(p).replace("PORT", str(free_port())), str(tmp_path / "C")))
        with pytest.raises(OSError):
            await other.activate(other.config)
        assert other.listeners == {} and other.http.sites == {}


@pytest.mark.parametrize("address", ["bla:a", "127.0.0.1:99999"])
async def test_health_port_is_refused_when_listening_not_when_reading(
    tmp_path: Path, address: str
) -> None:
    """As CoreDNS: `health HOST:PORT` reads whatever PORT says; the server that would listen
    there fails to start, saying where and why, and leaves nothing open."""
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    text = corefile(ports()).replace("PORT", str(free_port()))
    text = text.replace(text.split("health ")[1].split("\n")[0], address)
    config = from_text(text, str(tmp_path / "Corefile"))  # `kdns check` accepts it
    app = App(config)
    with pytest.raises(OSError, match=r"Corefile:4: invalid port .*health cannot listen there"):
        await app.activate(config)
    assert app.listeners == {} and app.http.sites == {}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("health 8080", "missing port"),
        ("ready :8181 {\n monitor sometimes\n}", "monitor type"),
        ("reload 1s", "below the minimum"),
        ("reload 10s 500ms", "below the minimum"),
        ("prometheus :9153 :9154", "wrong number of arguments"),
        ("log . {\n class maybe\n}", "invalid log class"),
        ("loop here", "takes no arguments"),
    ],
)
def test_directive_errors_point_at_the_line(line: str, message: str) -> None:
    with pytest.raises(CorefileError) as err:
        from_text(f". {{\n{line}\n}}\n", "Corefile")
    assert message in str(err.value)
    assert str(err.value).startswith(("Corefile:2:", "Corefile:3:"))  # the offending line


async def test_health_checks_itself_and_exports_it(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    p = ports()
    async with running_kdns(corefile(p), tmp_path):

        async def checked() -> bool:
            count = series(
                await scrape(p["metrics"]), "coredns_health_request_duration_seconds_count"
            )
            return bool(count) and next(iter(count.values())) >= 1

        await eventually(checked)
        samples = await scrape(p["metrics"])
        assert series(samples, "coredns_health_request_failures_total") == {(): 0.0}

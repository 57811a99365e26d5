"""`zonal`: zone-scoped names of headless services, over a real socket.

CoreDNS's TestServeDNSZonal cases run against a server reading a snapshot, then the live source
(the real kubernetes-asyncio client against `tests/support/fakeapi.py`) shows that the
EndpointSlice `zone` field is read from the API and that a watch event moving an endpoint to
another zone changes the answers at once, replayed replies included. Clients are dnspython.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.rcode
import pytest

from kdns.sources import kubernetes as source_mod
from tests.integration.test_kubernetes_source import FAST, answer, answers, corefile, k8s_plugin
from tests.support.client import ask, rrs
from tests.support.fakeapi import FakeApiServer, endpoint_slice, namespace, service
from tests.support.server import running_kdns
from tests.unit.cluster.test_zonal import SNAPSHOT

pytestmark = pytest.mark.timeout(60)

HDLS = "hdls.testns.svc.cluster.local."
SOA = ("cluster.local.", "SOA")


def snapshot_corefile(tmp_path: Path, option: str = "zonal") -> str:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    return f"""
.:PORT {{
    kubernetes cluster.local {{
        snapshot snap.yaml
        {option}
    }}
}}
"""


# (name, type, rcode, answer, additional, negative answer carries the SOA)
CASES: list[tuple[str, str, int, list[tuple[str, str, str]], list[tuple[str, str, str]]]] = [
    ("us-west-2a.pin._zone." + HDLS, "A", dns.rcode.NOERROR, [("", "A", "172.0.0.1")], []),
    (
        "us-west-2b.pin._zone." + HDLS,
        "A",
        dns.rcode.NOERROR,
        [("", "A", "172.0.0.2"), ("", "A", "172.0.0.3")],
        [],
    ),
    ("us-west-2c.pin._zone." + HDLS, "A", dns.rcode.NOERROR, [], []),
    ("us-west-2c.pin._zone." + HDLS, "TXT", dns.rcode.NOERROR, [], []),
    ("us-west-2a.prefer._zone." + HDLS, "A", dns.rcode.NOERROR, [("", "A", "172.0.0.1")], []),
    (
        "us-west-2c.prefer._zone." + HDLS,
        "A",
        dns.rcode.NOERROR,
        [("", "A", f"172.0.0.{i}") for i in (1, 2, 3, 5, 6)],
        [],
    ),
    ("us-west-2c.prefer._zone." + HDLS, "TXT", dns.rcode.NOERROR, [], []),
    (
        "us-west-2b.pin._zone." + HDLS,
        "SRV",
        dns.rcode.NOERROR,
        [
            ("", "SRV", "0 50 80 172-0-0-2.hdls.testns.svc.cluster.local."),
            ("", "SRV", "0 50 80 db-3.hdls.testns.svc.cluster.local."),
        ],
        [
            ("172-0-0-2.hdls.testns.svc.cluster.local.", "A", "172.0.0.2"),
            ("db-3.hdls.testns.svc.cluster.local.", "A", "172.0.0.3"),
        ],
    ),
    ("us-west-2a.pin._zone.ghost.testns.svc.cluster.local.", "A", dns.rcode.NXDOMAIN, [], []),
    ("us-west-2a.florp._zone." + HDLS, "A", dns.rcode.NXDOMAIN, [], []),
    ("us-west-2a.pin._zone.clstr.testns.svc.cluster.local.", "A", dns.rcode.NXDOMAIN, [], []),
]


def _owned(name: str, found: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return sorted((owner or name, t, data) for owner, t, data in found)


async def test_zonal_names_over_udp_and_tcp(tmp_path: Path) -> None:
    async with running_kdns(snapshot_corefile(tmp_path), tmp_path) as run:
        for tcp in (False, True, False):  # the last round is served from replayed replies
            for name, qtype, rcode, want, extra in CASES:
                msg = await ask(run.port, name, qtype, tcp=tcp)
                where = f"{name} {qtype} tcp={tcp}"
                assert msg.rcode() == rcode, where
                assert sorted(rrs(msg)) == _owned(name, want), where
                assert sorted(rrs(msg, "additional")) == sorted(extra), where
                if not want:
                    assert [(o, t) for o, t, _ in rrs(msg, "authority")] == [SOA], where
                else:
                    assert all(r.ttl == 5 for r in msg.answer), where


async def test_an_external_name_to_a_zonal_name_is_followed(tmp_path: Path) -> None:
    async with running_kdns(snapshot_corefile(tmp_path), tmp_path) as run:
        for _ in range(3):
            msg = await ask(run.port, "ext.testns.svc.cluster.local.")
            assert msg.rcode() == dns.rcode.NOERROR
            target = "us-west-2b.pin._zone." + HDLS
            assert sorted(rrs(msg)) == [
                ("ext.testns.svc.cluster.local.", "CNAME", target),
                (target, "A", "172.0.0.2"),
                (target, "A", "172.0.0.3"),
            ]


async def test_without_zonal_the_names_do_not_exist(tmp_path: Path) -> None:
    async with running_kdns(snapshot_corefile(tmp_path, option=""), tmp_path) as run:
        msg = await ask(run.port, "us-west-2a.pin._zone." + HDLS)
        assert msg.rcode() == dns.rcode.NXDOMAIN
        # The service's own names are unchanged by the option.
        assert await answer(run.port, HDLS) == (
            dns.rcode.NOERROR,
            {"172.0.0.1", "172.0.0.2", "172.0.0.3", "172.0.0.5", "172.0.0.6"},
        )


@pytest.fixture
def fast_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_mod, "DEFAULT_TIMING", FAST)


def zoned_slice(name: str, zones: dict[str, str]) -> dict[str, Any]:
    """An EndpointSlice of `db` whose endpoint with each IP runs in the zone given for it."""
    obj = endpoint_slice(name, "db", list(zones))
    for ep in obj["endpoints"]:
        ep["zone"] = zones[ep["addresses"][0]]
    return obj


@pytest.mark.usefixtures("fast_timing")
async def test_live_source_reads_endpoint_zones_and_follows_moves(tmp_path: Path) -> None:
    api = FakeApiServer()
    for obj in (
        namespace("default"),
        service("db", cluster_ip=None),
        zoned_slice("db-abc", {"10.1.0.1": "zone-a", "10.1.0.2": "zone-b"}),
    ):
        api.apply(obj)
    await api.up()
    pin_a = "zone-a.pin._zone.db.default.svc.cluster.local"
    pin_c = "zone-c.pin._zone.db.default.svc.cluster.local"
    try:
        text = corefile(api.url, "zonal").replace(".:PORT {", ".:PORT {\n    bind 127.0.0.1")
        async with running_kdns(text, tmp_path) as run:
            assert k8s_plugin(run).ready()
            assert run.app.instance is not None
            fastpath = run.app.instance.dispatchers[("127.0.0.1", run.port)].fastpath
            for _ in range(2):  # the second answer is kept as bytes
                assert await answer(run.port, pin_a) == (dns.rcode.NOERROR, {"10.1.0.1"})
                assert await answer(run.port, pin_c) == (dns.rcode.NOERROR, set())
            hits = fastpath.hits
            assert await answer(run.port, pin_a) == (dns.rcode.NOERROR, {"10.1.0.1"})
            assert await answer(run.port, pin_c) == (dns.rcode.NOERROR, set())
            assert fastpath.hits == hits + 2  # both served again from bytes
            # A watch event moves 10.1.0.1 to zone-c: both names change, nothing stale is kept.
            api.apply(zoned_slice("db-abc", {"10.1.0.1": "zone-c", "10.1.0.2": "zone-b"}))
            await answers(run.port, pin_c, {"10.1.0.1"})
            await answers(run.port, pin_a, set())
            prefer_a = "zone-a.prefer._zone.db.default.svc.cluster.local"
            assert await answer(run.port, prefer_a) == (
                dns.rcode.NOERROR,
                {"10.1.0.1", "10.1.0.2"},
            )
    finally:
        await api.down()

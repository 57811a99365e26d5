"""Answers served again from bytes must be exactly what the full path would send."""

from __future__ import annotations

import logging
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from tests.support.client import ask, rrs
from tests.support.server import running_kdns, with_bundled_cluster
from tests.support.waiting import eventually

COREFILE = """\
.:PORT {
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        snapshot cluster.yaml
        ttl 30
    }
}
"""


async def test_repeated_queries_match_the_full_path(tmp_path: Path) -> None:
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        dispatcher = srv.app.instance.dispatchers[("127.0.0.1", srv.port)]  # type: ignore[union-attr]
        first = await ask(srv.port, "db.shop.svc.cluster.local.", "A")
        assert not dispatcher.fastpath.entries, "a name asked once takes no slot"
        second = await ask(srv.port, "db.shop.svc.cluster.local.", "A")
        assert dispatcher.fastpath.entries, "the second answer should be kept for the fast path"
        hits = dispatcher.fastpath.hits
        again = [await ask(srv.port, "db.shop.svc.cluster.local.", "A") for _ in range(5)]
        assert dispatcher.fastpath.hits == hits + 5
        again.append(second)
        for msg in again:
            assert sorted(rrs(msg)) == sorted(rrs(first))
            assert msg.flags == first.flags and msg.rcode() == first.rcode()


async def test_letter_case_of_each_question_is_kept(tmp_path: Path) -> None:
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        for name in ["WeB.ShOp.SvC.cluster.local.", "web.shop.svc.cluster.local."] * 3:
            msg = await ask(srv.port, name)
            assert rrs(msg) == [(name, "A", "10.96.12.34")]
        for zone in ["Cluster.Local.", "cluster.local."] * 2:
            msg = await ask(srv.port, f"nope.shop.svc.{zone}")
            assert msg.rcode() == dns.rcode.NXDOMAIN
            assert rrs(msg, "authority")[0][0] == zone
            assert rrs(msg, "authority")[0][2].startswith(f"ns.dns.{zone} hostmaster.{zone}")


async def test_ids_and_edns_shapes_are_respected(tmp_path: Path) -> None:
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        for _ in range(3):
            with_edns = await ask(srv.port, "web.shop.svc.cluster.local.", edns=0)
            plain = await ask(srv.port, "web.shop.svc.cluster.local.", edns=None)
            assert with_edns.edns == 0 and plain.edns == -1


async def test_an_index_change_ends_served_bytes(tmp_path: Path) -> None:
    async with running_kdns(COREFILE, with_bundled_cluster(tmp_path)) as srv:
        plugin = srv.app.instance.plugins[-1]  # type: ignore[union-attr]
        plugin.source.poll_interval = 0.05
        for _ in range(3):
            msg = await ask(srv.port, "db-2.db.shop.svc.cluster.local.")
            assert rrs(msg)[0][2] == "10.244.3.12"
        path = tmp_path / "cluster.yaml"
        path.write_text(path.read_text().replace("10.244.3.12", "10.244.3.99"))

        async def changed() -> bool:
            msg = await ask(srv.port, "db-2.db.shop.svc.cluster.local.")
            return rrs(msg)[0][2] == "10.244.3.99"

        await eventually(changed)


async def test_truncated_replies_stay_truncated(tmp_path: Path) -> None:
    items = "\n".join(
        f"  - addresses: [10.1.{i // 250}.{i % 250 + 1}]\n    conditions: {{ready: true}}"
        for i in range(60)
    )
    (tmp_path / "cluster.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\n"
        "spec: {clusterIP: None, ports: [{name: http, port: 80, protocol: TCP}]}\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: big-1, namespace: default, labels: "
        "{kubernetes.io/service-name: big}}\naddressType: IPv4\nendpoints:\n" + items + "\n"
    )
    async with running_kdns(COREFILE, tmp_path) as srv:
        for _ in range(3):
            msg = await ask(srv.port, "big.default.svc.cluster.local.", edns=None)
            assert msg.flags & dns.flags.TC and len(msg.to_wire()) <= 512
            full = await ask(srv.port, "big.default.svc.cluster.local.", tcp=True)
            assert not full.flags & dns.flags.TC and len(rrs(full)) == 60
            assert isinstance(full, dns.message.Message)


async def test_logged_names_are_logged_every_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corefile = COREFILE.replace("    bind 127.0.0.1\n", "    bind 127.0.0.1\n    log\n")
    caplog.set_level(logging.INFO, logger="kdns.query")
    async with running_kdns(corefile, with_bundled_cluster(tmp_path)) as srv:
        for _ in range(3):
            await ask(srv.port, "db.shop.svc.cluster.local.", "A")
        lines = [r.getMessage() for r in caplog.records if r.name == "kdns.query"]
        assert len([m for m in lines if '"A IN db.shop.svc.cluster.local. udp' in m]) == 3

"""Replies the cache wrote are counted as `plugin="cache"`, as CoreDNS counts them, including the
ones the fast path re-serves from bytes."""

from __future__ import annotations

from pathlib import Path

from tests.support.client import ask
from tests.support.http import scrape, series
from tests.support.ports import free_port
from tests.support.server import running_kdns, with_bundled_cluster
from tests.support.upstream import fake_upstream

ASKS = 4  # a miss, a full-path cache hit (stored for the fast path), then two fast-path hits


async def test_cache_hits_are_labelled_cache_on_responses_total(tmp_path: Path) -> None:
    with_bundled_cluster(tmp_path)
    mport = free_port()
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = (
            f".:PORT {{\n    bind 127.0.0.1\n    prometheus 127.0.0.1:{mport}\n    cache 30\n"
            "    kubernetes cluster.local {\n        snapshot cluster.yaml\n    }\n"
            f"    forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            for name in ("www.example.test.", "kubernetes.default.svc.cluster.local."):
                for _ in range(ASKS):
                    msg = await ask(srv.port, name, "A")
                    assert msg.answer, msg
            samples = await scrape(mport)
    assert up.counts[("www.example.test.", "A")] == 1
    by_plugin: dict[str, float] = {}
    for labels, value in series(samples, "coredns_dns_responses_total").items():
        got = dict(labels)
        assert got["rcode"] == "NOERROR", got
        by_plugin[got["plugin"]] = by_plugin.get(got["plugin"], 0) + value
    # Each name: the first ask written by its plugin, every later one by the cache.
    assert by_plugin == {"forward": 1, "kubernetes": 1, "cache": 2 * (ASKS - 1)}
    hits = series(samples, "coredns_cache_hits_total")
    assert sum(hits.values()) == by_plugin["cache"]
    requests = series(samples, "coredns_dns_requests_total")
    assert sum(requests.values()) == 2 * ASKS

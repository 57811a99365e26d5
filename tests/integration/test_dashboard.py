"""deploy/monitoring's Grafana dashboard queries series kdns really exports.

A dashboard whose panel names a metric or a label that does not exist shows "No data" forever,
and nobody notices until the day it is needed. This test reads every PromQL expression of the
dashboard (panels and template variables), runs kdns the way a cluster runs it (the live
Kubernetes source through the fake API server, cache, forward with a healthy and a dead
upstream, prometheus), sends the traffic that makes each series appear, and checks that every
metric an expression names has samples on /metrics carrying every label the expression groups,
filters or labels its legend by.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdns.sources import kubernetes as source_mod
from tests.support.client import ask
from tests.support.fakeapi import FakeApiServer, endpoint_slice, namespace, service
from tests.support.http import scrape
from tests.support.ports import free_port
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "kdns-dashboard.json"
# Labels Prometheus itself attaches to every scraped series (the scrape target's).
TARGET_LABELS = frozenset({"job", "instance"})
METRIC = re.compile(r"\b((?:coredns|kdns|process)_[a-z0-9_]+)\b")
MATCHERS = re.compile(r"\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
LABEL_VALUES = re.compile(r"label_values\((?:[^,()]*\([^)]*\))?[^,()]*,\s*([a-zA-Z_]\w*)\s*\)")


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, expr, legend) for every query the dashboard runs."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard["panels"]):
        for t in p.get("targets", []):
            yield f"panel {p['title']!r}", t["expr"], t.get("legendFormat", "")
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            yield f"variable {var['name']!r}", query["query"], ""


def labels_used(expr: str, legend: str) -> set[str]:
    used = {m for block in MATCHERS.findall(expr) for m in MATCHER_LABEL.findall(block)}
    for group in GROUPING.findall(expr):
        used.update(label.strip() for label in group.split(",") if label.strip())
    used.update(LEGEND_LABEL.findall(legend))
    used.update(LABEL_VALUES.findall(expr))
    return used


def test_every_panel_has_a_query_and_the_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"] if p["type"] != "row"]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in dashboard["panels"]:
        if p["type"] != "row":
            assert p["targets"], p["title"]
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
    exprs = list(expressions(dashboard))
    # The search-path waste kdns alone exports has its panel.
    assert any("kdns_search_path_queries_total" in e for _, e, _ in exprs)
    # The parser above reads what the expressions say.
    assert labels_used('sum by (le, to) (rate(x_bucket{job=~"$job"}[5m]))', "{{to}}") == {
        "le",
        "to",
        "job",
    }


@pytest.fixture(autouse=True)
def fast_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        source_mod,
        "DEFAULT_TIMING",
        source_mod.Timing(
            watch_timeout=5.0,
            read_timeout=0.6,
            connect_timeout=1.0,
            backoff_initial=0.05,
            backoff_max=0.3,
            page_size=50,
        ),
    )


async def test_every_series_a_panel_queries_exists_in_metrics(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    wanted: dict[str, set[str]] = {}
    for _where, expr, legend in expressions(dashboard):
        names = set(METRIC.findall(expr))
        assert names, f"{expr!r} names no kdns metric"
        for name in names:
            wanted.setdefault(name, set()).update(labels_used(expr, legend) - TARGET_LABELS)

    api = FakeApiServer()
    for obj in (
        namespace("default"),
        service("web", cluster_ip="10.96.0.10"),
        service("db", cluster_ip=None),
        endpoint_slice("db-abc", "db", ["10.1.0.1", "10.1.0.2"]),
    ):
        api.apply(obj)
    await api.up()
    mport = free_port()
    dead = free_port()  # nothing listens here: its health checks fail
    try:
        async with fake_upstream() as up:
            up.add("www.example.test.", "A", "192.0.2.10")
            corefile = f"""\
.:PORT {{
    bind 127.0.0.1
    prometheus 127.0.0.1:{mport}
    cache 30
    kubernetes cluster.local {{
        endpoint {api.url}
    }}
    forward . 127.0.0.1:{up.port}
}}
down.test:PORT {{
    bind 127.0.0.1
    prometheus 127.0.0.1:{mport}
    forward . 127.0.0.1:{dead} {{
        max_fails 1
        health_check 0.1s
    }}
}}
"""
            async with running_kdns(corefile, tmp_path) as srv:
                for name in (
                    "web.default.svc.cluster.local.",  # kubernetes, then cache hits
                    "www.example.test.",  # forwarded, then cache hits
                    "www.example.test.default.svc.cluster.local.",  # a search-list expansion
                ):
                    for _ in range(3):
                        await ask(srv.port, name, "A")
                await ask(srv.port, "db.default.svc.cluster.local.", "SRV", tcp=True)

                async def exported() -> bool:
                    # The dead upstream's series appear once its checks have failed.
                    await ask(srv.port, "x.down.test.", "A")
                    got = await scrape(mport)
                    return set(wanted) <= {n for n, _ in got}

                # Bounded; on a timeout the assertions below name what is missing.
                with contextlib.suppress(TimeoutError):
                    await eventually(exported, timeout=20)
                samples = await scrape(mport)
    finally:
        await api.down()

    for name, labels in sorted(wanted.items()):
        # A histogram's _bucket/_sum/_count and a counter's name are what PromQL names.
        found = [dict(lbls) for n, lbls in samples if n == name]
        assert found, f"the dashboard queries {name}, which /metrics does not export"
        have = set().union(*(f.keys() for f in found))
        assert labels <= have, f"{name} has no label(s) {sorted(labels - have)}"

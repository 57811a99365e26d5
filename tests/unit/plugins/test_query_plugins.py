"""log, loop and errors plugins through their query interface, and the recorder's buckets."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from kdns.config import from_text
from kdns.dns import names
from kdns.dns.message import NOERROR, NXDOMAIN, SERVFAIL, Edns, Reply, Request
from kdns.dns.records import HINFO, A, a
from kdns.plugins import errors as errors_plugin
from kdns.plugins import log as log_plugin
from kdns.plugins import loop as loop_plugin
from kdns.server.recorder import QueryRecorder
from tests.support.waiting import eventually


def request(name: str = "example.org.", qtype: int = A, **kw: object) -> Request:
    base = Request(
        id=29008,
        qname=name,
        name=names.normalize(name),
        qtype=qtype,
        qclass=1,
        flags=0x0100,
        edns=Edns(4096),
        proto="udp",
        client="::1",
        port=50759,
        qname_wire=names.to_wire(name),
        size=41,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def config_of(text: str, name: str) -> object:
    (block,) = from_text(f".:53 {{\n{text}\n}}\n").blocks
    entry = block.get(name)
    assert entry is not None
    return entry.config


async def test_log_common_format(caplog: pytest.LogCaptureFixture) -> None:
    plugin = log_plugin.build(config_of("log", "log"), None)  # type: ignore[arg-type]

    async def answer(req: Request) -> Reply:
        return Reply(rcode=NOERROR, answer=(a("example.org.", 300, "192.0.2.1"),), ra=True)

    with caplog.at_level(logging.INFO, logger="kdns.query"):
        await plugin(request(), answer)
    (line,) = [r.getMessage() for r in caplog.records]
    head, _, duration = line.rpartition(" ")
    # 56 = header 12 + question 17 + answer 16 (name compressed) + OPT 11
    assert head == '[::1]:50759 - 29008 "A IN example.org. udp 41 false 4096" NOERROR qr,rd,ra 56'
    assert duration.endswith("s") and float(duration[:-1]) >= 0


async def test_log_names_and_classes(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config_of('log example.org "{name} {rcode}" {\n class denial\n}', "log")
    plugin = log_plugin.build(cfg, None)  # type: ignore[arg-type]

    async def nx(req: Request) -> Reply:
        return Reply(rcode=NXDOMAIN)

    async def ok(req: Request) -> Reply:
        return Reply(rcode=NOERROR, answer=(a(req.qname, 5, "192.0.2.1"),))

    with caplog.at_level(logging.INFO, logger="kdns.query"):
        await plugin(request("a.example.org."), nx)  # logged: denial under example.org
        await plugin(request("b.example.org."), ok)  # success: not logged
        await plugin(request("a.example.net."), nx)  # outside NAMES: not logged
    assert [r.getMessage() for r in caplog.records] == ["a.example.org. NXDOMAIN"]


def test_log_classify() -> None:
    assert log_plugin.classify(Reply(rcode=NOERROR)) == "denial"  # NODATA
    assert log_plugin.classify(Reply(rcode=NXDOMAIN)) == "denial"
    assert log_plugin.classify(Reply(rcode=SERVFAIL)) == "error"
    assert log_plugin.classify(Reply(rcode=NOERROR, answer=(a("x.", 1, "192.0.2.1"),))) == (
        "success"
    )


async def test_loop_detected_when_the_probe_comes_back() -> None:
    fatal: list[str] = []
    plugin = loop_plugin.LoopPlugin(".", ("127.0.0.1", 53), fatal.append, ":1053")
    probe = request(plugin.qname, HINFO, client="127.0.0.1", port=55953)
    passes = 0

    async def forward_to_self(req: Request) -> Reply:
        # What `forward . 127.0.0.1:1053` to ourselves does: the query enters the chain again.
        nonlocal passes
        passes += 1
        if fatal or passes > 10:
            return Reply(rcode=SERVFAIL)
        return await plugin(req, forward_to_self)

    await plugin(probe, forward_to_self)
    assert fatal == [
        f'plugin/loop: Loop (127.0.0.1:55953 -> :1053) detected for zone ".", see '
        f'https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO {plugin.qname}"'
    ]
    assert plugin.seen == 3


async def test_loop_ignores_other_queries_and_stops_after_detection_window() -> None:
    fatal: list[str] = []
    plugin = loop_plugin.LoopPlugin("cluster.local.", ("127.0.0.1", 53), fatal.append, ":53")
    assert plugin.qname.endswith(".cluster.local.") and plugin.qname.count(".") == 4

    async def servfail(req: Request) -> Reply:
        return Reply(rcode=SERVFAIL)

    for _ in range(5):
        await plugin(request("other.cluster.local.", HINFO), servfail)
        await plugin(request(plugin.qname, A), servfail)
    plugin.disabled = True  # the detection window is over
    for _ in range(5):
        await plugin(request(plugin.qname, HINFO), servfail)
    assert fatal == [] and plugin.seen == 0


async def test_errors_logs_and_consolidates(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config_of('errors {\n consolidate 100ms "^timeout" warning show_first\n}', "errors")
    plugin = errors_plugin.build(cfg, None)  # type: ignore[arg-type]

    def failing(why: str) -> object:
        async def handler(req: Request) -> Reply:
            return Reply(rcode=SERVFAIL, error=why)

        return handler

    with caplog.at_level(logging.INFO, logger="kdns.errors"):
        await plugin(request(), failing("boom"))  # type: ignore[arg-type]
        for _ in range(3):
            await plugin(request(), failing("timeout talking to 192.0.2.53"))  # type: ignore[arg-type]
        await eventually(lambda: len(caplog.records) >= 3, 3)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "plugin/errors: 2 example.org. A: boom"),
        ("WARNING", "plugin/errors: 2 example.org. A: timeout talking to 192.0.2.53"),
        ("WARNING", "plugin/errors: 3 errors like '^timeout' occurred in last 100ms"),
    ]


def test_go_duration() -> None:
    assert errors_plugin.go_duration(30) == "30s"
    assert errors_plugin.go_duration(300) == "5m0s"
    assert errors_plugin.go_duration(3600) == "1h0m0s"


def test_recorder_buckets_are_cumulative_and_inclusive() -> None:
    rec = QueryRecorder()
    req = request("web.cluster.local.", A, client="10.0.0.1", size=100)
    for seconds in (0.00025, 0.0003, 10.0):
        rec.observe("dns://:53", req, Reply(rcode=NOERROR), "cluster.local.", seconds, 511)
    fams = {f.name: f for f in rec.collect()}
    buckets = {
        s.labels["le"]: s.value
        for s in fams["coredns_dns_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["0.00025"] == 1  # le is inclusive
    assert buckets["0.0005"] == 2
    assert buckets["8.192"] == 2 and buckets["+Inf"] == 3
    sizes = {
        s.labels["le"]: s.value
        for s in fams["coredns_dns_response_size_bytes"].samples
        if s.name.endswith("_bucket")
    }
    assert sizes["400"] == 0 and sizes["511"] == 3

"""The metrics recorder hears what its dispatcher drops, panics and answers from the moment
the dispatcher is built."""

from __future__ import annotations

import struct

from prometheus_client import CollectorRegistry

from kdns.dns.message import Reply, Request
from kdns.server import recorder
from kdns.server.dispatch import ERROR_REPLIES_PER_SECOND, Dispatcher, Route

SERVER = "dns://127.0.0.1:1053"


async def broken(request: Request) -> Reply:
    raise RuntimeError("plugin bug")


def dispatcher(rec: recorder.QueryRecorder) -> Dispatcher:
    routes = [Route((".",), broken, SERVER)]
    return Dispatcher(routes, recorder.observers(rec, routes, 1053, {(".", 1053)}))


async def test_dropped_queries_are_counted_undecodable_and_over_the_error_rate() -> None:
    registry = CollectorRegistry()
    rec = recorder.QueryRecorder(registry)
    registry.register(rec)
    d = dispatcher(rec)
    for _ in range(3):
        assert await d.serve(b"\x00\x01", "udp", "192.0.2.1", 5353) is None  # no header
    no_question = struct.pack("!6H", 7, 0, 0, 0, 0, 0)  # FORMERR, rate-limited over UDP
    sent = int(ERROR_REPLIES_PER_SECOND) + 200
    replies = [await d.serve(no_question, "udp", "192.0.2.1", 5353) for _ in range(sent)]
    answered = sum(r is not None for r in replies)
    assert answered < sent  # the burst went past the budget (it refills 1000/s)
    dropped = registry.get_sample_value(
        "kdns_dns_dropped_requests_total", {"server": SERVER, "proto": "udp"}
    )
    assert dropped == 3 + sent - answered


async def test_panics_and_answers_are_observed() -> None:
    registry = CollectorRegistry()
    rec = recorder.QueryRecorder(registry)
    registry.register(rec)
    d = dispatcher(rec)
    query = struct.pack("!6H", 9, 0x0100, 1, 0, 0, 0) + b"\x01a\x00" + struct.pack("!HH", 1, 1)
    assert await d.serve(query, "udp", "192.0.2.1", 5353) is not None  # SERVFAIL
    assert registry.get_sample_value("coredns_panics_total") == 1.0
    labels = {"server": SERVER, "zone": ".", "view": "", "rcode": "SERVFAIL", "plugin": ""}
    assert registry.get_sample_value("coredns_dns_responses_total", labels) == 1.0

"""The kubernetes plugin as a handler, in the style of CoreDNS's `TestServeDNS`: a request in, a
reply out, through the plugin itself, with a snapshot fed straight into its index builder (no
listener, no API server). Covers SERVFAIL before the first sync, fallthrough, and CNAME chasing
through the server's lookup."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kdns.cluster import objects
from kdns.dns.message import NOERROR, NXDOMAIN, REFUSED, SERVFAIL, Reply, Request
from kdns.dns.records import TYPE_NAMES, a, rdata_text
from kdns.plugins import kubernetes
from tests.support.fakeapi import endpoint_slice, namespace, service
from tests.support.plugins import context, parse_directive, request

CLUSTER: list[dict[str, Any]] = [
    namespace("default"),
    namespace("testns"),
    service("svc1", "testns", "10.0.0.1"),
    service("hdls1", "testns", None),
    endpoint_slice("hdls1-a", "hdls1", ["172.0.0.2", "172.0.0.3"], "testns"),
    {
        "kind": "Service",
        "metadata": {"name": "ext", "namespace": "testns"},
        "spec": {"type": "ExternalName", "externalName": "example.net"},
    },
]

FROM_NEXT = Reply(rcode=REFUSED, plugin="next")  # what the rest of the chain would say
UPSTREAM = Reply(rcode=NOERROR, answer=(a("example.net.", 300, "93.184.215.14"),))


@dataclass(frozen=True)
class Case:
    qname: str
    qtype: str
    rcode: int
    answer: tuple[str, ...] = ()  # "name TYPE rdata"
    synced: bool = True
    corefile: str = ""  # extra lines of the kubernetes stanza


CASES = [
    Case(
        "svc1.testns.svc.cluster.local.",
        "A",
        NOERROR,
        ("svc1.testns.svc.cluster.local. A 10.0.0.1",),
    ),
    Case("svc1.testns.svc.cluster.local.", "AAAA", NOERROR),  # NODATA: the name exists
    Case(
        "hdls1.testns.svc.cluster.local.",
        "A",
        NOERROR,
        (
            "hdls1.testns.svc.cluster.local. A 172.0.0.2",
            "hdls1.testns.svc.cluster.local. A 172.0.0.3",
        ),
    ),
    Case("nosvc.testns.svc.cluster.local.", "A", NXDOMAIN),
    # Before the first sync an unknown name is not known to be absent: SERVFAIL, not NXDOMAIN.
    Case("nosvc.testns.svc.cluster.local.", "A", SERVFAIL, synced=False),
    # With fallthrough, the rest of the chain answers what the cluster does not hold.
    Case("nosvc.testns.svc.cluster.local.", "A", REFUSED, corefile="fallthrough"),
    Case(
        "svc1.testns.svc.cluster.local.",
        "A",
        NOERROR,
        ("svc1.testns.svc.cluster.local. A 10.0.0.1",),
        corefile="fallthrough",
    ),
    # Outside the plugin's zones the request goes on untouched.
    Case("example.org.", "A", REFUSED),
    # ExternalName: the CNAME, then its target resolved through the server (forward).
    Case(
        "ext.testns.svc.cluster.local.",
        "A",
        NOERROR,
        ("ext.testns.svc.cluster.local. CNAME example.net.", "example.net. A 93.184.215.14"),
    ),
]


def plugin(case: Case, tmp_path: Path) -> kubernetes.KubernetesPlugin:
    stanza = (
        f"kubernetes cluster.local {{\n snapshot {tmp_path / 'unused.yaml'}\n {case.corefile}\n}}"
    )
    config = parse_directive(stanza, "kubernetes")

    async def lookup(sub: Request) -> Reply:
        assert sub.qname == "example.net."
        return UPSTREAM

    built = kubernetes.build(config, context(lookup=lookup))
    feed(built, CLUSTER, case.synced)
    return built


def feed(built: kubernetes.KubernetesPlugin, items: Iterable[dict[str, Any]], synced: bool) -> None:
    convert = {
        "Namespace": objects.namespace_from,
        "Service": objects.service_from,
        "EndpointSlice": objects.slice_from,
    }
    for item in items:
        built.builder.upsert(convert[item["kind"]](item))
    if synced:
        for kind in convert:
            built.builder.mark_synced(kind)
    built.publish()


def shown(reply: Reply) -> tuple[str, ...]:
    return tuple(
        sorted(
            f"{rr.name} {TYPE_NAMES.get(rr.rtype, rr.rtype)} {rdata_text(rr)}"
            for rr in reply.answer
        )
    )


def case_id(c: Case) -> str:
    state = "synced" if c.synced else "unsynced"
    return f"{c.qname}/{c.qtype}/{c.rcode}/{c.corefile or 'plain'}/{state}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_serve_dns(case: Case, tmp_path: Path) -> None:
    built = plugin(case, tmp_path)

    async def call_next(req: Request) -> Reply:
        return FROM_NEXT

    reply = await built(request(case.qname, case.qtype), call_next)
    assert reply.rcode == case.rcode, reply.error
    assert shown(reply) == tuple(sorted(case.answer))

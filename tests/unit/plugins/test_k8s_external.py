"""The k8s_external plugin's reply-replay contract: an answer may be re-served from bytes until
an object it was read from changes, not when others do; upstream-chased answers never are."""

from __future__ import annotations

from typing import Any

from kdns.cluster import objects
from kdns.cluster.answer import MAX_CHAIN
from kdns.dns.message import NOERROR, Reply, Request
from kdns.dns.records import a
from kdns.plugins import k8s_external, kubernetes, memo
from tests.support.fakeapi import namespace, service
from tests.support.plugins import context, parse_directive, request

COREFILE = " k8s_external example.org\n kubernetes cluster.local\n"


def web(name: str, ip: str | None) -> dict[str, Any]:
    svc = service(name, "shop", cluster_ip="10.96.0.20")
    svc["spec"]["type"] = "LoadBalancer"
    if ip is not None:
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    return svc


def built() -> tuple[k8s_external.ExternalPlugin, kubernetes.KubernetesPlugin]:
    ctx = context()
    k8s = kubernetes.build(parse_directive(COREFILE, "kubernetes"), ctx)
    ctx.built["kubernetes"] = k8s
    ext = k8s_external.build(parse_directive(COREFILE, "k8s_external"), ctx)
    k8s.builder.upsert(objects.namespace_from(namespace("shop")))
    for obj in (web("web", "203.0.113.10"), web("api", "203.0.113.11")):
        k8s.builder.upsert(objects.service_from(obj))
    for kind in ("Namespace", "Service", "EndpointSlice"):
        k8s.builder.mark_synced(kind)
    k8s.publish()
    return ext, k8s


async def ask(plugin: k8s_external.ExternalPlugin, qname: str) -> tuple[Reply, memo.Memo]:
    async def call_next(req: Request) -> Reply:
        raise AssertionError("not expected")

    note = memo.Memo()
    token = memo.current.set(note)
    try:
        return await plugin(request(qname), call_next), note
    finally:
        memo.current.reset(token)


async def test_answers_stay_valid_until_their_service_changes() -> None:
    ext, k8s = built()
    reply, note = await ask(ext, "web.shop.example.org.")
    assert reply.rcode == NOERROR and reply.plugin == "k8s_external"
    assert note.usable
    (check,) = note.checks
    k8s.builder.upsert(objects.service_from(web("api", "203.0.113.12")))  # another Service
    k8s.publish()
    assert check()
    k8s.builder.upsert(objects.service_from(web("web", "203.0.113.99")))
    k8s.publish()
    assert not check()


async def test_a_chased_cname_is_never_re_served_from_bytes() -> None:
    ext, k8s = built()
    elb = web("elb", None)
    elb["status"] = {"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}}
    k8s.builder.upsert(objects.service_from(elb))
    k8s.publish()
    reply, note = await ask(ext, "elb.shop.example.org.")
    assert [r.rtype for r in reply.answer] == [5]  # the CNAME (the lookup here fails)
    assert not note.usable


async def test_cname_lookups_through_the_server_nest_a_bounded_number_of_times() -> None:
    calls = 0
    cname = a("x.example.org.", 5, "192.0.2.1")

    async def looping(req: Request) -> Reply:
        # A server whose answer for the target is again a CNAME chased through it.
        nonlocal calls
        calls += 1
        return await kubernetes.chase(looping, req, Reply(NOERROR, (cname,)), "x.example.org.")

    start = Reply(NOERROR, (cname,))
    reply = await kubernetes.chase(looping, request("y.example.org."), start, "x.example.org.")
    assert calls == MAX_CHAIN
    assert reply.answer == (cname,)

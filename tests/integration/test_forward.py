"""`forward` against fake upstreams that answer, time out, die, truncate and lie."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import dns.rcode
import pytest
from prometheus_client import CollectorRegistry

from kdns.corefile import CorefileError
from kdns.dns.message import NOERROR, NXDOMAIN, REFUSED, SERVFAIL, Reply, Request
from kdns.dns.records import rdata_text
from kdns.plugins.forward import ForwardConfig, ForwardPlugin, UpstreamAddr
from kdns.transport import client
from tests.support.client import ask, rrs
from tests.support.plugins import context, parse_directive, request
from tests.support.server import running_kdns
from tests.support.upstream import Behaviour, FakeUpstream, fake_upstream
from tests.support.waiting import eventually


async def _next(request: Request) -> Reply:
    return Reply(rcode=NOERROR, plugin="next")


_built: list[ForwardPlugin] = []


@pytest.fixture(autouse=True)
async def _stop_built() -> AsyncIterator[None]:
    """Stop every plugin a test built (its health-check probes), as the server would: leaving
    a running part ends what the plugin started."""
    yield
    while _built:
        async with _built.pop().running():
            pass


def plugin(text: str, registry: CollectorRegistry | None = None, **fast: float) -> ForwardPlugin:
    cfg: ForwardConfig = parse_directive(text, "forward")
    cfg = replace(cfg, read_timeout=fast.get("read_timeout", 0.3), timeout=fast.get("timeout", 1))
    built = ForwardPlugin(cfg, context(registry))
    _built.append(built)
    return built


@contextlib.asynccontextmanager
async def upstreams(n: int, **kw: object) -> AsyncIterator[list[FakeUpstream]]:
    async with contextlib.AsyncExitStack() as stack:
        ups = [await stack.enter_async_context(fake_upstream(**kw)) for _ in range(n)]
        for up in ups:
            up.add("www.example.test.", "A", "192.0.2.10")
        yield ups


def addrs(ups: list[FakeUpstream]) -> str:
    return " ".join(f"127.0.0.1:{u.port}" for u in ups)


def answer_ips(reply: Reply) -> list[str]:
    return [rdata_text(r) for r in reply.answer]


async def test_forwards_over_udp_and_tcp_end_to_end(tmp_path: Path) -> None:
    async with upstreams(1) as (up,):
        corefile = f".:PORT {{\n bind 127.0.0.1\n forward . 127.0.0.1:{up.port}\n}}\n"
        async with running_kdns(corefile, tmp_path) as srv:
            for tcp in (False, True):
                msg = await ask(srv.port, "WWW.example.test.", "A", tcp=tcp)
                assert msg.rcode() == dns.rcode.NOERROR
                assert [r[2] for r in rrs(msg)] == ["192.0.2.10"]
            missing = await ask(srv.port, "nope.example.test.", "A")
            assert msg.flags & dns.flags.RA
            assert missing.rcode() == dns.rcode.NXDOMAIN
            assert rrs(missing, "authority")[0][1] == "SOA"
            assert [p for _, _, p in up.received] == ["udp", "tcp", "udp"]
            text = srv.registry.get_sample_value(
                "coredns_proxy_request_duration_seconds_count",
                {"proxy_name": "forward", "to": f"127.0.0.1:{up.port}", "rcode": "NXDOMAIN"},
            )
            assert text == 1


async def test_random_ids_and_source_ports() -> None:
    async with upstreams(1) as (up,):
        fwd = plugin(f"forward . 127.0.0.1:{up.port}")
        for i in range(20):
            await fwd(request(f"n{i}.example.test."), _next)
        ids = {mid for mid, _ in up.peers}
        ports = {port for _, port in up.peers}
        assert len(up.peers) == 20
        assert len(ids) >= 18  # 16-bit random IDs: a repeat among 20 is rare, not impossible
        assert len(ports) >= 18  # a fresh socket per query: kernel-chosen random ports
        assert 4242 not in ids  # the client's ID never goes upstream


@pytest.mark.parametrize("mode", ["wrong_id", "wrong_question", "wrong_port"])
async def test_forged_replies_are_never_accepted(mode: str) -> None:
    async with upstreams(1, behaviour=Behaviour(mode=mode)) as (up,):
        fwd = plugin(f"forward . 127.0.0.1:{up.port}", read_timeout=0.3, timeout=0.6)
        reply = await fwd(request("www.example.test."), _next)
        assert reply.rcode == SERVFAIL
        assert "6.6.6.6" not in answer_ips(reply)
        assert up.received  # it did answer, just not acceptably


async def test_forgeries_racing_the_real_reply_are_ignored() -> None:
    async with upstreams(1, behaviour=Behaviour(mode="spoof_first")) as (up,):
        # Wrong ID, wrong question and a copy from a wrong port arrive before the genuine
        # reply: the exchange must skip all three and take the genuine one.
        fwd = plugin(f"forward . 127.0.0.1:{up.port}")
        reply = await fwd(request("www.example.test."), _next)
        assert answer_ips(reply) == ["192.0.2.10"]


async def test_udp_client_ignores_forgery_and_takes_real_reply() -> None:
    """Directly at the transport: forgeries first, then the genuine reply, all on one socket."""
    received: list[bytes] = []

    class Upstream(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            received.append(data)
            up = FakeUpstream()
            up.add("www.example.test.", "A", "192.0.2.10")
            real = up.build(data, "udp")
            assert real is not None
            for forged in up.forgeries(data):
                self.t.sendto(forged, addr)  # type: ignore[attr-defined]
            self.t.sendto(b"\x00garbage", addr)  # type: ignore[attr-defined]
            self.t.sendto(real, addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        msg = await client.udp("127.0.0.1", port, client.Question("www.example.test.", 1), 2.0)
        assert [rdata_text(r) for r in msg.answer] == ["192.0.2.10"]
    finally:
        transport.close()


async def test_truncated_udp_reply_is_retried_over_tcp() -> None:
    async with upstreams(1, behaviour=Behaviour(mode="truncate_always")) as (up,):
        up.add("big.example.test.", "A", *[f"198.51.100.{i}" for i in range(1, 61)])
        fwd = plugin(f"forward . 127.0.0.1:{up.port}")
        reply = await fwd(request("big.example.test."), _next)
        assert reply.rcode == NOERROR and not reply.tc
        assert len(reply.answer) == 60
        assert [p for _, _, p in up.received] == ["udp", "tcp"]


async def test_force_tcp_and_prefer_udp() -> None:
    async with upstreams(1) as (up,):
        fwd = plugin(f"forward . 127.0.0.1:{up.port} {{\n force_tcp\n}}")
        await fwd(request("www.example.test."), _next)
        fwd = plugin(f"forward . 127.0.0.1:{up.port} {{\n prefer_udp\n}}")
        await fwd(request("www.example.test.", proto="tcp"), _next)
        fwd = plugin(f"forward . 127.0.0.1:{up.port}")
        await fwd(request("www.example.test.", proto="tcp"), _next)
        assert [p for _, _, p in up.received] == ["tcp", "udp", "tcp"]


async def test_dead_upstream_fails_over_and_is_health_checked() -> None:
    async with upstreams(2) as (dead, good):
        await dead.stop()  # nothing listens there any more: ICMP port unreachable
        reg = CollectorRegistry()
        fwd = plugin(
            f"forward . {addrs([dead, good])} {{\n policy sequential\n health_check 50ms\n}}",
            reg,
        )
        for _ in range(3):
            reply = await fwd(request("www.example.test."), _next)
            assert answer_ips(reply) == ["192.0.2.10"]
        dead_proxy = fwd.proxies[0]
        await eventually(dead_proxy.down)
        before = len(good.received)
        reply = await fwd(request("www.example.test."), _next)
        assert answer_ips(reply) == ["192.0.2.10"] and len(good.received) == before + 1
        failures = reg.get_sample_value(
            "coredns_proxy_healthcheck_failures_total",
            {"proxy_name": "forward", "to": f"127.0.0.1:{dead.port}"},
        )
        assert failures is not None and failures >= 2
        # The upstream comes back: the next health probe (`. IN NS`) clears it.
        revived = FakeUpstream(port=dead.port)
        await revived.start()
        try:
            await eventually(lambda: not dead_proxy.down())
            assert (".", "NS") in revived.counts
        finally:
            await revived.stop()


async def test_timeouts_fail_over_then_give_up_with_servfail() -> None:
    async with upstreams(2) as (slow, good):
        slow.behaviour = Behaviour(mode="drop")
        fwd = plugin(f"forward . {addrs([slow, good])} {{\n policy sequential\n}}")
        reply = await fwd(request("www.example.test."), _next)
        assert answer_ips(reply) == ["192.0.2.10"]
        good.behaviour = Behaviour(mode="drop")
        loop = asyncio.get_running_loop()
        start = loop.time()
        reply = await fwd(request("www.example.test."), _next)
        took = loop.time() - start
        assert reply.rcode == SERVFAIL and "no reply" in reply.error
        assert 0.9 <= took < 3  # the whole-query timeout (1 s here; 5 s by default)


async def test_all_down_uses_a_random_upstream_or_failfast() -> None:
    async with upstreams(1) as (up,):
        reg = CollectorRegistry()
        fwd = plugin(f"forward . 127.0.0.1:{up.port}", reg)
        fwd.proxies[0].fails = 5  # marked down by earlier health checks
        reply = await fwd(request("www.example.test."), _next)
        assert answer_ips(reply) == ["192.0.2.10"]
        assert reg.get_sample_value("coredns_forward_healthcheck_broken_total") == 1
        fwd = plugin(f"forward . 127.0.0.1:{up.port} {{\n failfast_all_unhealthy_upstreams\n}}")
        fwd.proxies[0].fails = 5
        reply = await fwd(request("www.example.test."), _next)
        assert reply.rcode == SERVFAIL


async def test_max_concurrent_refuses_excess_and_counts() -> None:
    async with upstreams(1, behaviour=Behaviour(delay=0.2)) as (up,):
        reg = CollectorRegistry()
        text = f"forward . 127.0.0.1:{up.port} {{\n max_concurrent 2\n}}"
        fwd = plugin(text, reg, read_timeout=2, timeout=3)
        replies = await asyncio.gather(
            *(fwd(request(f"q{i}.example.test."), _next) for i in range(5))
        )
        rcodes = sorted(r.rcode for r in replies)
        assert rcodes == [NXDOMAIN, NXDOMAIN, REFUSED, REFUSED, REFUSED]
        assert reg.get_sample_value("coredns_forward_max_concurrent_rejects_total") == 3
        assert len(up.received) == 2


async def test_identical_inflight_queries_share_one_upstream_query() -> None:
    async with upstreams(1, behaviour=Behaviour(delay=0.2)) as (up,):
        fwd = plugin(f"forward . 127.0.0.1:{up.port}", read_timeout=2, timeout=3)
        replies = await asyncio.gather(
            *(fwd(request("www.example.test."), _next) for _ in range(30)),
            fwd(request("www.example.test.", "AAAA"), _next),
        )
        assert all(answer_ips(r) == ["192.0.2.10"] for r in replies[:30])
        assert up.counts == {("www.example.test.", "A"): 1, ("www.example.test.", "AAAA"): 1}


async def test_policies_spread_or_order_queries() -> None:
    async with upstreams(3) as ups:
        fwd = plugin(f"forward . {addrs(ups)} {{\n policy round_robin\n}}")
        for i in range(9):
            await fwd(request(f"r{i}.example.test."), _next)
        assert [len(u.received) for u in ups] == [3, 3, 3]
        fwd = plugin(f"forward . {addrs(ups)} {{\n policy sequential\n}}")
        for i in range(4):
            await fwd(request(f"s{i}.example.test."), _next)
        assert [len(u.received) for u in ups] == [7, 3, 3]
        fwd = plugin(f"forward . {addrs(ups)}")  # random
        for i in range(60):
            await fwd(request(f"x{i}.example.test."), _next)
        assert all(len(u.received) > 5 + 3 for u in ups[1:])


async def test_except_from_zone_and_next_rcode() -> None:
    async with upstreams(1) as (up,):
        text = f"forward example.test 127.0.0.1:{up.port} {{\n except internal.example.test\n}}"
        fwd = plugin(text)
        assert (await fwd(request("a.internal.example.test."), _next)).plugin == "next"
        assert (await fwd(request("www.other.test."), _next)).plugin == "next"
        assert (await fwd(request("www.example.test."), _next)).plugin == "forward"
        fwd = plugin(f"forward . 127.0.0.1:{up.port} {{\n next NXDOMAIN\n}}")
        assert (await fwd(request("nope.example.test."), _next)).plugin == "next"
        assert len(up.received) == 2


async def test_failover_rcode_tries_the_next_upstream() -> None:
    async with upstreams(2) as (bad, good):
        bad.behaviour = Behaviour(mode="servfail")
        text = f"forward . {addrs([bad, good])} {{\n policy sequential\n failover SERVFAIL\n}}"
        reply = await plugin(text)(request("www.example.test."), _next)
        assert answer_ips(reply) == ["192.0.2.10"]
        reply = await plugin(f"forward . {addrs([bad, good])} {{\n policy sequential\n}}")(
            request("www.example.test."), _next
        )
        assert reply.rcode == SERVFAIL  # without failover an upstream's SERVFAIL is its answer


def test_parses_upstream_forms_and_resolv_conf(tmp_path: Path) -> None:
    (tmp_path / "resolv.conf").write_text(
        "# comment\nsearch example.test\nnameserver 127.0.0.53\nnameserver ::1\noptions ndots:5\n"
    )
    from kdns.config import from_text

    conf = from_text(
        ".:53 {\n forward . resolv.conf dns://127.0.0.1:5300 [::1]:54 127.0.0.2\n}\n",
        str(tmp_path / "Corefile"),
    )
    entry = conf.blocks[0].get("forward")
    assert entry is not None
    assert entry.config.upstreams == (
        UpstreamAddr("127.0.0.53", 53),
        UpstreamAddr("::1", 53),
        UpstreamAddr("127.0.0.1", 5300),
        UpstreamAddr("::1", 54),
        UpstreamAddr("127.0.0.2", 53),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("forward .", "usage: forward FROM TO"),
        ("forward . grpc://127.0.0.1", "grpc:// is not supported"),
        ("forward . 127.0.0.1 {\n tls a b c d\n}", "usage: tls [CERT KEY [CA]]"),
        ("forward . no-such-file", "not an IP address or an existing resolv.conf"),
        ("forward . 127.0.0.1:0", "between 1 and 65535"),
        ("forward . " + " ".join(f"127.0.0.{i}" for i in range(1, 17)), "at most 15"),
        ("forward . 127.0.0.1 {\n policy fastest\n}", "policy must be"),
        ("forward . 127.0.0.1 {\n max_concurrent lots\n}", "whole number"),
        ("forward . 127.0.0.1 {\n bogus\n}", "unknown property 'bogus'"),
        ("forward . 127.0.0.1 {\n health_check 1s sideways\n}", "expected no_rec"),
        ("forward . 127.0.0.1 {\n failover MAYBE\n}", "unknown rcode"),
    ],
)
def test_bad_forward_config_is_refused_with_location(text: str, message: str) -> None:
    with pytest.raises(CorefileError) as err:
        parse_directive(text, "forward")
    assert message in str(err.value) and "Corefile:" in str(err.value)

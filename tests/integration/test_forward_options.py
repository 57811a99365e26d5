"""`forward` options CoreDNS's setup tests accept: source_address, read_timeout, failover limits,
force_tcp with prefer_udp, resolv.conf files without nameservers."""

from __future__ import annotations

from pathlib import Path

import dns.rcode
import pytest

from kdns.config import from_text
from kdns.corefile import CorefileError
from kdns.plugins.forward import ForwardConfig
from tests.support.client import ask, rrs
from tests.support.plugins import parse_directive
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream


async def test_source_address_is_the_upstream_sockets_local_address(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = (
            f".:PORT {{\n bind 127.0.0.1\n"
            f" forward . 127.0.0.1:{up.port} {{\n  source_address 127.0.0.2\n }}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            for tcp in (False, True):
                msg = await ask(srv.port, "www.example.test.", "A", tcp=tcp)
                assert msg.rcode() == dns.rcode.NOERROR
                assert [r[2] for r in rrs(msg)] == ["192.0.2.10"]
        assert up.sources == ["127.0.0.2", "127.0.0.2"]
        assert [p for _, _, p in up.received] == ["udp", "tcp"]


def test_read_timeout_and_source_address_are_read() -> None:
    cfg: ForwardConfig = parse_directive(
        "forward . 127.0.0.1 {\n read_timeout 500ms\n source_address ::1\n}", "forward"
    )
    assert cfg.read_timeout == 0.5
    assert cfg.source_address == "::1"


async def test_force_tcp_wins_over_prefer_udp(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        corefile = (
            f".:PORT {{\n bind 127.0.0.1\n"
            f" forward . 127.0.0.1:{up.port} {{\n  force_tcp\n  prefer_udp\n }}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            for tcp in (False, True):
                msg = await ask(srv.port, "www.example.test.", "A", tcp=tcp)
                assert [r[2] for r in rrs(msg)] == ["192.0.2.10"]
        assert [p for _, _, p in up.received] == ["tcp", "tcp"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("failover NOERROR", "Corefile:3: NoError cannot be used in failover"),
        ("read_timeout 0s", "Corefile:3: read_timeout must be positive"),
        ("source_address not-an-ip", "Corefile:3: invalid IP address 'not-an-ip'"),
    ],
)
def test_refusals_point_at_the_line(body: str, message: str) -> None:
    with pytest.raises(CorefileError) as err:
        from_text(f".:53 {{\n forward . 127.0.0.1 {{\n  {body}\n }}\n}}\n", "Corefile")
    assert str(err.value).startswith(message)


def test_an_empty_resolv_conf_counts_for_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.conf").write_text("# nameserver 1.1.1.1\n")
    path = str(tmp_path / "Corefile")
    cfg = from_text(".:53 {\n forward . empty.conf 127.0.0.1\n}\n", path)
    fwd = cfg.blocks[0].entries[0].config
    assert [u.host for u in fwd.upstreams] == ["127.0.0.1"]
    with pytest.raises(CorefileError, match="no valid upstream addresses found"):
        from_text(".:53 {\n forward . empty.conf\n}\n", path)


async def test_several_forwards_longest_zone_first(tmp_path: Path) -> None:
    async with fake_upstream() as root, fake_upstream() as zone, fake_upstream() as sub:
        for up, ip in ((root, "192.0.2.1"), (zone, "192.0.2.2"), (sub, "192.0.2.3")):
            for name in ("www.sub.example.test.", "www.example.test.", "www.other.test."):
                up.add(name, "A", ip)
        corefile = (
            ".:PORT {\n bind 127.0.0.1\n"
            f" forward . 127.0.0.1:{root.port}\n"
            f" forward sub.example.test 127.0.0.1:{sub.port}\n"
            f" forward example.test 127.0.0.1:{zone.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            got = {}
            for name in ("www.sub.example.test.", "www.example.test.", "www.other.test."):
                msg = await ask(srv.port, name, "A")
                got[name] = [r[2] for r in rrs(msg)]
        assert got == {
            "www.sub.example.test.": ["192.0.2.3"],
            "www.example.test.": ["192.0.2.2"],
            "www.other.test.": ["192.0.2.1"],
        }
        assert [len(u.received) for u in (root, zone, sub)] == [1, 1, 1]

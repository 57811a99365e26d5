"""`hosts` over real sockets: answers as CoreDNS gives them (dig and dnspython), the file followed
on disk (edited in place and swapped like a mounted ConfigMap), a missing or broken file that
harms nothing, fallthrough to a forwarder, and the coredns_hosts_* metrics."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dns.flags
import dns.rcode
import pytest

from kdns.plugins.hosts import HostsPlugin
from tests.support.client import DIG, ask, dig, rrs
from tests.support.http import scrape, series
from tests.support.ports import free_port
from tests.support.server import Running, running_kdns
from tests.support.upstream import fake_upstream
from tests.support.waiting import eventually


def hosts_plugin(srv: Running) -> HostsPlugin:
    assert srv.app.instance is not None
    (plugin,) = (p for p in srv.app.instance.plugins if isinstance(p, HostsPlugin))
    return plugin


async def addresses(port: int, name: str, qtype: str = "A") -> list[str]:
    return sorted(r[2] for r in rrs(await ask(port, name, qtype)))


@pytest.mark.skipif(DIG is None, reason="dig is installed by `make test`")
async def test_answers_as_coredns_with_dig(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text(
        "127.0.0.1 localhost localhost.domain\n::1 localhost localhost.domain\n"
        "10.0.0.1 example.org\n::FFFF:10.0.0.2 example.com\n"
    )
    corefile = ".:PORT {\n    bind 127.0.0.1\n    hosts hosts {\n        ttl 60\n    }\n}\n"
    async with running_kdns(corefile, tmp_path) as srv:
        out = await dig(srv.port, "example.org", "A")
        assert "status: NOERROR" in out
        assert "aa" in out.split("flags:")[1].split(";")[0].split()
        assert "example.org.\t\t60\tIN\tA\t10.0.0.1" in out
        assert (await dig(srv.port, "+short", "example.com")).split() == ["10.0.0.2"]
        assert (await dig(srv.port, "+short", "localhost", "AAAA")).split() == ["::1"]
        assert (await dig(srv.port, "+short", "-x", "127.0.0.1")).split() == [
            "localhost.",
            "localhost.domain.",
        ]
        nodata = await dig(srv.port, "example.org", "MX")
        assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata
        # Not in the data and no fallthrough: a hosts file has no SOA to deny it with.
        assert "status: SERVFAIL" in await dig(srv.port, "nothere.example.org")
        tcp = await ask(srv.port, "LocalHost.Domain.", "A", tcp=True)
        assert rrs(tcp) == [("LocalHost.Domain.", "A", "127.0.0.1")]


async def test_the_file_is_followed_when_it_changes(tmp_path: Path) -> None:
    # A ConfigMap volume as the kubelet writes it: NodeHosts -> ..data/NodeHosts, and ..data a
    # symlink swapped atomically to a new directory on each update.
    mount = tmp_path / "coredns"
    (mount / "..v1").mkdir(parents=True)
    (mount / "..v1" / "NodeHosts").write_text("172.18.0.2 node-a\n")
    (mount / "..data").symlink_to("..v1")
    (mount / "NodeHosts").symlink_to("..data/NodeHosts")
    corefile = (
        ".:PORT {\n    bind 127.0.0.1\n"
        f"    hosts {mount}/NodeHosts {{\n        ttl 60\n        reload 100ms\n"
        "        fallthrough\n    }\n}\n"
    )
    async with running_kdns(corefile, tmp_path) as srv:
        port = srv.port
        assert await addresses(port, "node-a.") == ["172.18.0.2"]
        # Asked again over UDP: now re-served from the fast path, which must notice the change.
        assert await addresses(port, "node-a.") == ["172.18.0.2"]
        (mount / "..v2").mkdir()
        (mount / "..v2" / "NodeHosts").write_text("172.18.0.2 node-a\n172.18.0.3 node-b\n")
        (mount / "..tmp").symlink_to("..v2")
        os.replace(mount / "..tmp", mount / "..data")
        await eventually(lambda: _answers(port, "node-b."), timeout=5)
        assert await addresses(port, "172.18.0.3", "A") == []  # not a name in the data
        # Edited in place, as a hand-edited /etc/hosts is.
        (mount / "..v2" / "NodeHosts").write_text("172.18.0.9 node-a\n")
        await eventually(lambda: _has(port, "node-a.", "172.18.0.9"), timeout=5)
        reply = await ask(port, "node-b.", "A")
        assert reply.rcode() == dns.rcode.SERVFAIL  # gone from the data, nowhere to fall to


async def _answers(port: int, name: str) -> bool:
    return bool(await addresses(port, name))


async def _has(port: int, name: str, ip: str) -> bool:
    return await addresses(port, name) == [ip]


async def test_missing_and_broken_files_harm_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "hosts"
    # reload 0: the test reads the file itself, deterministically, as often as it likes.
    corefile = (
        ".:PORT {\n    bind 127.0.0.1\n"
        "    hosts hosts {\n        10.9.9.9 inline.test\n        reload 0\n    }\n}\n"
    )
    with caplog.at_level(logging.INFO, logger="kdns.hosts"):
        async with running_kdns(corefile, tmp_path) as srv:
            plugin = hosts_plugin(srv)
            assert await addresses(srv.port, "inline.test.") == ["10.9.9.9"]  # no file yet
            for _ in range(3):
                assert await plugin.refresh() is False
            assert caplog.text.count(f"cannot read {path}: No such file or directory") == 1

            path.write_text("10.0.0.1 a.test\nnot a hosts line\n10.0.0.2 b.test\n")
            assert await plugin.refresh() is True
            assert await addresses(srv.port, "a.test.") == ["10.0.0.1"]
            assert await addresses(srv.port, "b.test.") == ["10.0.0.2"]
            assert f"{path}:2: skipped 'not a hosts line'" in caplog.text
            assert f"{path} is readable again" in caplog.text

            path.write_bytes(b"10.0.0.7 a.test\n\xff\xfe garbage\n")  # not text: kept out
            for _ in range(3):
                assert await plugin.refresh() is False
            assert caplog.text.count(f"cannot read {path}: not UTF-8 text") == 1
            assert await addresses(srv.port, "a.test.") == ["10.0.0.1"]

            path.unlink()  # as CoreDNS, what was read before keeps serving
            assert await plugin.refresh() is False
            assert await addresses(srv.port, "b.test.") == ["10.0.0.2"]
            assert await addresses(srv.port, "inline.test.") == ["10.9.9.9"]

            path.write_text("10.0.0.3 a.test\n")
            assert await plugin.refresh() is True
            assert await addresses(srv.port, "a.test.") == ["10.0.0.3"]
            assert (await ask(srv.port, "b.test.", "A")).rcode() == dns.rcode.SERVFAIL


async def test_fallthrough_hands_unknown_names_to_forward(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("10.0.0.1 host.example.com\n")
    async with fake_upstream() as up:
        up.add("other.example.com.", "A", "192.0.2.7")
        up.add("9.9.9.9.in-addr.arpa.", "PTR", "nine.example.")
        corefile = (
            ".:PORT {\n    bind 127.0.0.1\n"
            "    hosts hosts example.com {\n        fallthrough\n    }\n"
            f"    forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            reply = await ask(srv.port, "host.example.com.", "A")
            assert reply.flags & dns.flags.AA and rrs(reply)[0][2] == "10.0.0.1"
            assert await addresses(srv.port, "other.example.com.") == ["192.0.2.7"]
            assert await addresses(srv.port, "9.9.9.9.in-addr.arpa.", "PTR") == ["nine.example."]
            # A name the data knows is answered here for every type: NODATA, never forwarded.
            nodata = await ask(srv.port, "host.example.com.", "TXT")
            assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
            assert ("host.example.com.", "TXT") not in up.counts


async def test_entry_metrics(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("10.0.0.1 a.test b.test\n::1 c.test\n")
    metrics = free_port()
    corefile = (
        f".:PORT {{\n    bind 127.0.0.1\n    prometheus 127.0.0.1:{metrics}\n"
        "    hosts hosts {\n        10.0.0.2 inline.test\n        reload 0\n    }\n}\n"
    )
    async with running_kdns(corefile, tmp_path) as srv:
        m = await scrape(metrics)
        # CoreDNS counts addresses of names and names of addresses: (2 + 1) * 2 + 1 * 2.
        assert series(m, "coredns_hosts_entries") == {(): 8.0}
        stamp = series(m, "coredns_hosts_reload_timestamp_seconds")[()]
        assert stamp == pytest.approx(path.stat().st_mtime)
        path.write_text("10.0.0.1 a.test\n")
        os.utime(path, (stamp + 10, stamp + 10))
        assert await hosts_plugin(srv).refresh() is True
        m = await scrape(metrics)
        assert series(m, "coredns_hosts_entries") == {(): 4.0}
        assert series(m, "coredns_hosts_reload_timestamp_seconds")[()] == pytest.approx(stamp + 10)

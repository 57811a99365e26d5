"""`loadbalance`: address order changes between replies, cache hits included; CNAME first."""

from __future__ import annotations

import hashlib
import ipaddress
import random
import struct
from collections import Counter
from pathlib import Path

import pytest

from kdns.config import from_text
from kdns.corefile import CorefileError
from kdns.dns import names
from kdns.dns.records import MX, RR, a, cname, rdata_text, txt
from kdns.plugins.loadbalance import parse_weights, prefer, round_robin, weighted
from kdns.server.app import App
from tests.support.client import ask, rrs
from tests.support.plugins import parse_directive
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream
from tests.support.waiting import eventually

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- apiVersion: v1
  kind: Service
  metadata: {name: db, namespace: shop}
  spec: {clusterIP: None, ports: [{name: pg, port: 5432}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: db-1, namespace: shop, labels: {kubernetes.io/service-name: db}}
  addressType: IPv4
  endpoints:
""" + "".join(
    f"  - {{addresses: [10.1.0.{i}], conditions: {{ready: true}}}}\n" for i in range(1, 9)
)


def mx(name: str, ttl: int, pref: int, target: str) -> RR:
    return RR(name, MX, ttl, struct.pack("!H", pref) + names.to_wire(target))


def test_round_robin_keeps_cnames_first_and_shuffles_addresses() -> None:
    records = (
        cname("x.test.", 30, "y.test."),
        *(a("y.test.", 30, f"192.0.2.{i}") for i in range(1, 9)),
        txt("y.test.", 30, "keep"),
        mx("y.test.", 30, 10, "mail1.test."),
        mx("y.test.", 30, 20, "mail2.test."),
    )
    orders = set()
    for _ in range(50):
        out = round_robin(records)
        assert out[0] == records[0] and out[1].rtype == records[9].rtype
        assert sorted(out, key=repr) == sorted(records, key=repr)
        orders.add(tuple(r.rdata for r in out))
    assert len(orders) > 10


async def test_headless_answers_and_cache_hits_are_shuffled(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT)
    async with fake_upstream() as up:
        up.add("many.example.test.", "A", *[f"192.0.2.{i}" for i in range(1, 9)])
        corefile = (
            ".:PORT {\n bind 127.0.0.1\n loadbalance\n cache 30\n"
            " kubernetes cluster.local {\n  snapshot cluster.yaml\n }\n"
            f" forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            for qname, count in (("db.shop.svc.cluster.local.", 8), ("many.example.test.", 8)):
                orders = set()
                for _ in range(30):
                    msg = await ask(srv.port, qname, "A")
                    ips = [r[2] for r in rrs(msg)]
                    assert len(ips) == count
                    orders.add(tuple(ips))
                assert len(orders) > 5, qname
            assert up.counts[("many.example.test.", "A")] == 1  # the rest were cache hits


def test_unknown_policies_are_refused() -> None:
    with pytest.raises(CorefileError, match="unknown loadbalance policy"):
        parse_directive("loadbalance shuffle", "loadbalance")
    with pytest.raises(CorefileError, match="invalid CIDR"):
        parse_directive("loadbalance {\n prefer 10.0.0.0/33\n}", "loadbalance")


WEIGHTS = """\
# weights of web.example.test's addresses
web.example.test
192.0.2.1 3
192.0.2.2 1

WEB.example.test.
192.0.2.3 2
"""


def test_weight_file_parses_and_says_where_it_is_wrong() -> None:
    weights = parse_weights(WEIGHTS, "w")
    ip = ipaddress.ip_address
    assert weights == {
        "web.example.test.": {ip("192.0.2.1"): 3, ip("192.0.2.2"): 1, ip("192.0.2.3"): 2}
    }
    for text, line, message in (
        ("a.test\n192.0.2.1 0\n", 2, "wrong weight '0'"),
        ("a.test\n192.0.2.1 256\n", 2, "wrong weight '256'"),
        ("# c\n192.0.2.1 5\n", 2, "before any domain name"),
        ("a.test\n192.0.2.x 5\n", 2, "wrong IP address"),
        ("a.test\n\n192.0.2.1\n", 3, "not a domain name"),
        ("a.test\n192.0.2.1 5 6\n", 2, "cannot parse"),
    ):
        with pytest.raises(CorefileError) as err:
            parse_weights(text, "w")
        assert str(err.value).startswith(f"w:{line}: ") and message in str(err.value)


def test_weighted_draws_the_first_address_by_weight() -> None:
    records = tuple(a("web.example.test.", 30, f"192.0.2.{i}") for i in (1, 2, 3, 4))
    firsts: Counter[str] = Counter()
    rng = random.Random(7)
    for _ in range(6000):
        out = weighted(records, parse_weights(WEIGHTS, "w"), rng)
        assert sorted(out, key=repr) == sorted(records, key=repr)
        firsts[rdata_text(out[0])] += 1
    # weights 3, 1, 2 and 1 (not listed): 3/7, 1/7, 2/7, 1/7 of the draws
    for ip, share in (("192.0.2.1", 3 / 7), ("192.0.2.2", 1 / 7), ("192.0.2.3", 2 / 7)):
        assert abs(firsts[ip] / 6000 - share) < 0.03, firsts
    assert abs(firsts["192.0.2.4"] / 6000 - 1 / 7) < 0.03, firsts


def test_prefer_puts_the_preferred_networks_first() -> None:
    records = (
        cname("x.test.", 30, "y.test."),
        *(a("y.test.", 30, f"192.0.2.{i}") for i in (1, 2, 3)),
        a("y.test.", 30, "10.0.0.1"),
        a("y.test.", 30, "172.16.0.1"),
    )
    nets = (ipaddress.ip_network("172.16.0.0/12"), ipaddress.ip_network("10.0.0.0/8"))
    out = prefer(records, nets)
    assert [rdata_text(r) for r in out[1:3]] == ["172.16.0.1", "10.0.0.1"]
    assert out[0] == records[0] and sorted(out, key=repr) == sorted(records, key=repr)


async def first_addresses(port: int, n: int) -> Counter[str]:
    firsts: Counter[str] = Counter()
    for _ in range(n):
        msg = await ask(port, "web.example.test.", "A")
        firsts[rrs(msg)[0][2]] += 1
    return firsts


async def test_weighted_over_a_running_server_and_reload_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    weights = tmp_path / "web.weights"
    weights.write_text(WEIGHTS)
    async with fake_upstream() as up:
        up.add("web.example.test.", "A", "192.0.2.1", "192.0.2.2", "192.0.2.3")
        corefile = (
            ".:PORT {\n bind 127.0.0.1\n cache 30\n"
            " loadbalance weighted web.weights {\n  reload 100ms\n }\n"
            f" forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            firsts = await first_addresses(srv.port, 600)  # cache hits too are drawn anew
            assert up.counts[("web.example.test.", "A")] == 1
            for ip, share in (("192.0.2.1", 3 / 6), ("192.0.2.2", 1 / 6), ("192.0.2.3", 2 / 6)):
                assert abs(firsts[ip] / 600 - share) < 0.09, firsts
            plugin = srv.app.instance.block_plugins[0][1]["loadbalance"]
            before = plugin.weights
            weights.write_text("web.example.test\n192.0.2.2 255\n192.0.2.9 nine\n")
            await eventually(
                lambda: plugin._digest == hashlib.sha256(weights.read_bytes()).digest()
            )
            assert plugin.weights is before  # a broken file: the last good weights serve
            weights.write_text("web.example.test\n192.0.2.2 255\n")
            await eventually(lambda: plugin.weights is not before)
            firsts = await first_addresses(srv.port, 200)
            assert firsts["192.0.2.2"] > 190, firsts  # 255 of 257


def test_a_broken_weight_file_fails_check_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "w").write_text("a.test\n192.0.2.1 1\n192.0.2.2 300\n")
    with pytest.raises(CorefileError) as err:
        from_text(". {\n loadbalance weighted w\n}\n", str(tmp_path / "Corefile"))
    assert str(err.value).startswith(f"{tmp_path / 'w'}:3: wrong weight '300'")
    # A file that is not there yet is fine for the Corefile (read when the server starts).
    from_text(". {\n loadbalance weighted missing\n}\n", str(tmp_path / "Corefile"))


async def test_a_missing_weight_file_without_reload_fails_the_start(tmp_path: Path) -> None:
    corefile = ".:1053 {\n loadbalance weighted nope {\n  reload 0\n }\n whoami\n}\n"
    app = App(from_text(corefile, str(tmp_path / "Corefile")))
    with pytest.raises(OSError, match=r"cannot read weight file .*nope"):
        await app.activate(app.config)


async def test_prefer_over_a_running_server(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("web.example.test.", "A", "192.0.2.1", "10.0.0.1", "192.0.2.2")
        corefile = (
            ".:PORT {\n bind 127.0.0.1\n loadbalance {\n  prefer 10.0.0.0/8\n }\n"
            f" cache 30\n forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            assert (await first_addresses(srv.port, 20)) == Counter({"10.0.0.1": 20})

"""`transfer` over real sockets: AXFR of a file zone (split over several TCP messages, SOA first
and last) and of cluster.local from a snapshot, read by dnspython's xfr and by dig; IXFR
answered up to date or in full; REFUSED for a client not listed and over UDP."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.support.client import ask, dig, rrs
from tests.support.server import running_kdns, with_bundled_cluster

HOSTS = 2000  # enough records that the zone needs several messages

ZONE = """\
$ORIGIN example.org.
$TTL 300
@     IN SOA ns1.example.org. hostmaster.example.org. 42 7200 3600 1209600 60
@     IN NS  ns1
ns1   IN A   192.0.2.53
www   IN A   192.0.2.80
"""

COREFILE = """\
.:PORT {
    bind 127.0.0.1
    loadbalance
    transfer example.org {
        to 127.0.0.1
    }
    transfer cluster.local {
        to 192.0.2.1 *
    }
    transfer small.test {
        to 127.0.0.2:53
    }
    file db.example.org example.org
    file db.small small.test
    kubernetes cluster.local {
        snapshot cluster.yaml
    }
}
"""


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    hosts = "".join(f"host{i} IN A 10.0.{i // 256}.{i % 256}\n" for i in range(HOSTS))
    (tmp_path / "db.example.org").write_text(ZONE + hosts)
    (tmp_path / "db.small").write_text(ZONE.replace("example.org.", "small.test."))
    return with_bundled_cluster(tmp_path)


def axfr(port: int, zone: str, source: str | None = None) -> list[dns.message.Message]:
    """The messages of an AXFR, read by dnspython (blocking: run in a thread)."""
    return list(
        dns.query.xfr("127.0.0.1", zone, port=port, source=source, lifetime=10, relativize=False)
    )


def records(messages: list[dns.message.Message]) -> list[tuple[str, str, str]]:
    return [r for m in messages for r in rrs(m)]


async def test_axfr_of_a_file_zone_in_several_messages(zones: Path) -> None:
    async with running_kdns(COREFILE, zones) as srv:
        messages = await asyncio.to_thread(axfr, srv.port, "example.org")
        assert len(messages) > 1
        got = records(messages)
        soa = (
            "example.org.",
            "SOA",
            "ns1.example.org. hostmaster.example.org. 42 7200 3600 1209600 60",
        )
        assert got[0] == soa and got[-1] == soa
        assert got.count(soa) == 2
        assert len(got) == 2 + 1 + 2 + HOSTS  # SOA twice, NS, ns1 and www, the hosts
        assert ("host1999.example.org.", "A", "10.0.7.207") in got
        assert ("example.org.", "NS", "ns1.example.org.") in got
        assert all(m.id == messages[0].id for m in messages)


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is installed by `make test`")
async def test_dig_axfr(zones: Path) -> None:
    async with running_kdns(COREFILE, zones) as srv:
        out = await dig(srv.port, "AXFR", "example.org")
        assert f"XFR size: {HOSTS + 5} records" in out
        assert "Transfer failed" not in out


async def test_axfr_of_the_cluster_zone(zones: Path) -> None:
    async with running_kdns(COREFILE, zones) as srv:
        got = records(await asyncio.to_thread(axfr, srv.port, "cluster.local"))
        assert got[0][:2] == ("cluster.local.", "SOA") and got[-1] == got[0]
        assert ("kubernetes.default.svc.cluster.local.", "A", "10.96.0.1") in got
        assert (
            "_https._tcp.kubernetes.default.svc.cluster.local.",
            "SRV",
            "0 100 443 kubernetes.default.svc.cluster.local.",
        ) in got
        assert (
            "kubernetes.default.svc.cluster.local.",
            "SRV",
            "0 100 443 kubernetes.default.svc.cluster.local.",
        ) in got
        # Headless: the service name and each endpoint's name, SRV per named port.
        db = sorted(r[2] for r in got if r[:2] == ("db.shop.svc.cluster.local.", "A"))
        assert db == ["10.244.1.10", "10.244.2.11", "10.244.3.12"]
        assert any(r[0].endswith(".db.shop.svc.cluster.local.") and r[1] == "A" for r in got)
        assert ("payments.shop.svc.cluster.local.", "CNAME", "payments.example.com.") in got
        assert len(got) == len(set(got)) + 1  # only the SOA appears twice


async def test_ixfr_is_answered_up_to_date_or_in_full(zones: Path) -> None:
    async with running_kdns(COREFILE, zones) as srv:

        async def ixfr(serial: int) -> dns.message.Message:
            q = dns.message.make_query("small.test.", "IXFR")
            q.authority.append(
                dns.rrset.from_text(
                    "small.test.", 0, "IN", "SOA", f"ns1.small.test. h.small.test. {serial} 1 1 1 1"
                )
            )
            return await dns.asyncquery.tcp(
                q, "127.0.0.1", port=srv.port, source="127.0.0.2", one_rr_per_rrset=True
            )

        current = await ixfr(42)
        assert [r[:2] for r in rrs(current)] == [("small.test.", "SOA")]
        older = rrs(await ixfr(41))
        assert older[0] == older[-1] and older[0][1] == "SOA" and len(older) == 5


async def test_refused_for_clients_not_listed_and_over_udp(zones: Path) -> None:
    async with running_kdns(COREFILE, zones) as srv:
        # small.test goes to 127.0.0.2 only.
        msg = await ask(srv.port, "small.test.", "AXFR", tcp=True)
        assert msg.rcode() == dns.rcode.REFUSED and not msg.answer
        allowed = await ask(srv.port, "small.test.", "AXFR", tcp=True, source="127.0.0.2")
        assert allowed.rcode() == dns.rcode.NOERROR and rrs(allowed)[0][1] == "SOA"
        # Never over UDP, even for a listed client.
        msg = await ask(srv.port, "small.test.", "AXFR", source="127.0.0.2")
        assert msg.rcode() == dns.rcode.REFUSED
        msg = await ask(srv.port, "example.org.", "IXFR")
        assert msg.rcode() == dns.rcode.REFUSED
        # Ordinary queries are not the transfer plugin's business.
        assert rrs(await ask(srv.port, "www.small.test.")) == [
            ("www.small.test.", "A", "192.0.2.80")
        ]

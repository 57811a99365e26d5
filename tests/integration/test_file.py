"""`file` over real sockets: answers from a zone file as CoreDNS gives them (dnspython and dig),
reload on a new SOA serial, a broken edit that keeps the last good zone serving, a syntax error
at start reported with the zone file's file:line, fallthrough, and coredns_file_entries."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import dns.flags
import dns.rcode
import pytest

from kdns import config
from kdns.corefile import CorefileError
from kdns.plugins.file import FilePlugin
from tests.support.client import ask, dig, rrs
from tests.support.http import scrape, series
from tests.support.ports import free_port
from tests.support.server import Running, running_kdns
from tests.support.upstream import fake_upstream
from tests.support.waiting import eventually

ZONE = """\
$ORIGIN example.org.
$TTL 300
@        IN SOA  ns1.example.org. hostmaster.example.org. ( {serial} 7200 3600 1209600 60 )
@        IN NS   ns1
@        IN MX   10 mail
ns1      IN A    192.0.2.53
www      IN A    {www}
         IN AAAA 2001:db8::80
mail     IN A    192.0.2.25
imap     IN CNAME mail
chain    IN CNAME imap
away     IN CNAME www.example.net.
*.apps   IN A    192.0.2.100
a.b.apps IN TXT  "not a wildcard"
sub      IN NS   ns.sub
ns.sub   IN A    192.0.2.99
"""

COREFILE = """\
example.org:PORT {
    bind 127.0.0.1
    file db.example.org {
        reload 50ms
    }
}
"""


def write_zone(directory: Path, serial: int = 1, www: str = "192.0.2.80") -> Path:
    path = directory / "db.example.org"
    replace(path, ZONE.format(serial=serial, www=www))
    return path


def replace(path: Path, text: str) -> None:
    """Swap in new contents at once (as a ConfigMap update does): a reload never reads half."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def file_plugin(srv: Running) -> FilePlugin:
    assert srv.app.instance is not None
    (plugin,) = (p for p in srv.app.instance.plugins if isinstance(p, FilePlugin))
    return plugin


async def www(srv: Running) -> list[str]:
    return [r[2] for r in rrs(await ask(srv.port, "www.example.org."))]


async def www_is(srv: Running, want: str) -> bool:
    return await www(srv) == [want]


async def test_answers_from_the_zone_as_coredns(tmp_path: Path) -> None:
    write_zone(tmp_path)
    async with running_kdns(COREFILE, tmp_path) as srv:
        msg = await ask(srv.port, "WWW.example.org.")
        assert rrs(msg) == [("www.example.org.", "A", "192.0.2.80")]
        assert msg.flags & dns.flags.AA
        assert rrs(msg, "authority") == [("example.org.", "NS", "ns1.example.org.")]
        # A CNAME chain is followed inside the zone.
        msg = await ask(srv.port, "chain.example.org.")
        assert rrs(msg) == [
            ("chain.example.org.", "CNAME", "imap.example.org."),
            ("imap.example.org.", "CNAME", "mail.example.org."),
            ("mail.example.org.", "A", "192.0.2.25"),
        ]
        # NXDOMAIN and NODATA carry the SOA.
        msg = await ask(srv.port, "nope.example.org.")
        assert msg.rcode() == dns.rcode.NXDOMAIN and msg.flags & dns.flags.AA
        assert [r[:2] for r in rrs(msg, "authority")] == [("example.org.", "SOA")]
        msg = await ask(srv.port, "mail.example.org.", "AAAA")
        assert msg.rcode() == dns.rcode.NOERROR and not msg.answer
        assert [r[:2] for r in rrs(msg, "authority")] == [("example.org.", "SOA")]
        # An empty non-terminal exists: NODATA, not NXDOMAIN.
        msg = await ask(srv.port, "b.apps.example.org.", "TXT")
        assert msg.rcode() == dns.rcode.NOERROR and not msg.answer
        # A wildcard answers under the name asked; a name that exists is not covered by it.
        msg = await ask(srv.port, "anything.apps.example.org.")
        assert rrs(msg) == [("anything.apps.example.org.", "A", "192.0.2.100")]
        msg = await ask(srv.port, "a.b.apps.example.org.", "TXT")
        assert rrs(msg) == [("a.b.apps.example.org.", "TXT", '"not a wildcard"')]
        # A delegation is a referral: NS in authority, glue in additional, not authoritative.
        msg = await ask(srv.port, "host.sub.example.org.")
        assert msg.rcode() == dns.rcode.NOERROR and not msg.answer
        assert not msg.flags & dns.flags.AA
        assert rrs(msg, "authority") == [("sub.example.org.", "NS", "ns.sub.example.org.")]
        assert rrs(msg, "additional") == [("ns.sub.example.org.", "A", "192.0.2.99")]
        # MX targets in the zone come with their addresses.
        msg = await ask(srv.port, "example.org.", "MX")
        assert rrs(msg, "additional") == [("mail.example.org.", "A", "192.0.2.25")]
        # AXFR without a `transfer` plugin is refused.
        msg = await ask(srv.port, "example.org.", "AXFR", tcp=True)
        assert msg.rcode() == dns.rcode.REFUSED


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is installed by `make test`")
async def test_dig_sees_an_authoritative_soa_and_a_chain(tmp_path: Path) -> None:
    write_zone(tmp_path, serial=2026120601)
    async with running_kdns(COREFILE, tmp_path) as srv:
        out = await dig(srv.port, "example.org", "SOA")
        assert "flags: qr aa rd;" in out and "status: NOERROR" in out
        assert "2026120601 7200 3600 1209600 60" in out
        out = await dig(srv.port, "+short", "chain.example.org")
        assert out.split() == ["imap.example.org.", "mail.example.org.", "192.0.2.25"]


async def test_out_of_zone_cname_target_is_resolved_through_the_server(tmp_path: Path) -> None:
    write_zone(tmp_path)
    async with fake_upstream() as up:
        up.add("www.example.net.", "A", "198.51.100.7")
        corefile = f""".:PORT {{
    bind 127.0.0.1
    file db.example.org example.org
    forward . 127.0.0.1:{up.port}
}}
"""
        async with running_kdns(corefile, tmp_path) as srv:
            msg = await ask(srv.port, "away.example.org.")
            assert rrs(msg) == [
                ("away.example.org.", "CNAME", "www.example.net."),
                ("www.example.net.", "A", "198.51.100.7"),
            ]


async def test_fallthrough_passes_nxdomain_on(tmp_path: Path) -> None:
    write_zone(tmp_path)
    async with fake_upstream() as up:
        up.add("nope.example.org.", "A", "198.51.100.8")
        corefile = f""".:PORT {{
    bind 127.0.0.1
    file db.example.org example.org {{
        fallthrough
    }}
    forward . 127.0.0.1:{up.port}
}}
"""
        async with running_kdns(corefile, tmp_path) as srv:
            assert rrs(await ask(srv.port, "nope.example.org.")) == [
                ("nope.example.org.", "A", "198.51.100.8")
            ]
            assert await www(srv) == ["192.0.2.80"]  # names in the zone still answer from it


async def test_reload_follows_a_new_serial_only(tmp_path: Path) -> None:
    path = write_zone(tmp_path, serial=1)
    async with running_kdns(COREFILE, tmp_path) as srv:
        plugin = file_plugin(srv)
        assert await www(srv) == ["192.0.2.80"]
        replace(path, ZONE.format(serial=2, www="192.0.2.81"))
        await eventually(lambda: www_is(srv, "192.0.2.81"))
        # The same serial with other data: read, but not served (CoreDNS's serial check).
        replace(path, ZONE.format(serial=2, www="192.0.2.82"))
        stamp = _stamp(path)
        await eventually(lambda: plugin._stamps["example.org."] == stamp)
        assert await www(srv) == ["192.0.2.81"]


def _stamp(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


async def test_broken_edit_keeps_the_last_good_zone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_zone(tmp_path, serial=1)
    async with running_kdns(COREFILE, tmp_path) as srv:
        plugin = file_plugin(srv)
        broken = ZONE.format(serial=5, www="192.0.2.90").replace("IN A    192.0.2.25", "IN A 1.2")
        with caplog.at_level(logging.ERROR, logger="kdns.file"):
            replace(path, broken)
            await eventually(lambda: f"{path}:9: bad A data" in caplog.text)
        assert await www(srv) == ["192.0.2.80"]
        assert plugin.zones["example.org."] is not None
        assert plugin.zones["example.org."].serial == 1
        replace(path, ZONE.format(serial=6, www="192.0.2.91"))
        await eventually(lambda: www_is(srv, "192.0.2.91"))


def test_syntax_error_at_start_names_the_zone_file_line(tmp_path: Path) -> None:
    path = tmp_path / "db.example.org"
    path.write_text(ZONE.format(serial=1, www="192.0.2.80").replace("IN MX   10 mail", "IN MX x"))
    corefile = tmp_path / "Corefile"
    with pytest.raises(CorefileError) as caught:
        config.from_text("example.org {\n    file db.example.org\n}\n", str(corefile))
    assert str(caught.value).startswith(f"{path}:5: file: bad MX data")


def test_missing_file_is_an_error_only_without_reload(tmp_path: Path) -> None:
    corefile = str(tmp_path / "Corefile")
    config.from_text("example.org {\n    file missing.db\n}\n", corefile)
    with pytest.raises(CorefileError, match=r"Corefile:2: file: cannot read 'missing.db'"):
        config.from_text("example.org {\n    file missing.db {\n reload 0\n }\n}\n", corefile)


async def test_entries_metric(tmp_path: Path) -> None:
    write_zone(tmp_path)
    metrics_port = free_port()
    corefile = COREFILE.replace("file", f"prometheus 127.0.0.1:{metrics_port}\n    file", 1)
    async with running_kdns(corefile, tmp_path):
        samples = await scrape(metrics_port)
        assert series(samples, "coredns_file_entries") == {(("dns_name", "example.org."),): 14.0}


async def test_a_file_that_appears_later_is_served_with_its_includes(tmp_path: Path) -> None:
    async with running_kdns(COREFILE, tmp_path) as srv:
        msg = await ask(srv.port, "www.example.org.")
        assert msg.rcode() == dns.rcode.SERVFAIL  # no zone yet: CoreDNS answers the same
        (tmp_path / "hosts.inc").write_text("extra IN A 192.0.2.7\n")
        zone = ZONE.format(serial=1, www="192.0.2.80") + "$INCLUDE hosts.inc\n"
        replace(tmp_path / "db.example.org", zone)
        await eventually(lambda: www_is(srv, "192.0.2.80"))
        assert rrs(await ask(srv.port, "extra.example.org.")) == [
            ("extra.example.org.", "A", "192.0.2.7")
        ]

"""`hosts` as a handler: CoreDNS's hosts_test.go table (TestLookupA), its fallthrough and NODATA
rules, what it tells the fast path, and the directive forms kdns refuses with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdns.corefile import CorefileError
from kdns.dns.message import NOERROR, SERVFAIL, Reply, Request
from kdns.dns.records import rdata_text, type_name
from kdns.plugins import memo
from kdns.plugins.hosts import HostsConfig, HostsPlugin
from tests.support.plugins import context, parse_directive, request

# CoreDNS plugin/hosts/hosts_test.go: hostsExample.
HOSTS_EXAMPLE = """
127.0.0.1 localhost localhost.domain
::1 localhost localhost.domain
10.0.0.1 example.org
::FFFF:10.0.0.2 example.com
"""

NEXT = Reply(rcode=NOERROR, plugin="next")


async def next_plugin(req: Request) -> Reply:
    return NEXT


def config(text: str, tmp_path: Path, zone: str = ".") -> HostsConfig:
    cfg: HostsConfig = parse_directive(text.replace("FILE", str(tmp_path / "hosts")), "hosts", zone)
    return cfg


async def started(cfg: HostsConfig) -> HostsPlugin:
    plugin = HostsPlugin(cfg, context())
    await plugin.refresh()  # start() without the reload task: these tests drive reads
    return plugin


def shown(reply: Reply) -> list[tuple[str, str, int, str]]:
    return [(r.name, type_name(r.rtype), r.ttl, rdata_text(r)) for r in reply.answer]


@pytest.mark.parametrize(
    ("qname", "qtype", "want"),
    [
        ("example.org.", "A", [("example.org.", "A", 3600, "10.0.0.1")]),
        ("example.com.", "A", [("example.com.", "A", 3600, "10.0.0.2")]),
        ("localhost.", "AAAA", [("localhost.", "AAAA", 3600, "::1")]),
        (
            "1.0.0.10.in-addr.arpa.",
            "PTR",
            [("1.0.0.10.in-addr.arpa.", "PTR", 3600, "example.org.")],
        ),
        (
            "2.0.0.10.in-addr.arpa.",
            "PTR",
            [("2.0.0.10.in-addr.arpa.", "PTR", 3600, "example.com.")],
        ),
        (
            "1.0.0.127.in-addr.arpa.",
            "PTR",
            [
                ("1.0.0.127.in-addr.arpa.", "PTR", 3600, "localhost."),
                ("1.0.0.127.in-addr.arpa.", "PTR", 3600, "localhost.domain."),
            ],
        ),
        ("example.org.", "AAAA", []),  # NODATA: the name has an A record
        ("example.org.", "MX", []),
    ],
)
async def test_lookup_table_of_coredns(
    qname: str, qtype: str, want: list[tuple[str, str, int, str]], tmp_path: Path
) -> None:
    (tmp_path / "hosts").write_text(HOSTS_EXAMPLE)
    plugin = await started(config("hosts FILE", tmp_path))
    reply = await plugin(request(qname, qtype), next_plugin)
    assert (reply.rcode, reply.aa, reply.plugin) == (NOERROR, True, "hosts")
    assert shown(reply) == want


async def test_owner_keeps_the_letter_case_asked(tmp_path: Path) -> None:
    plugin = await started(config("hosts {\n10.0.0.1 example.org\n}", tmp_path))
    reply = await plugin(request("ExAmple.ORG.", "A"), next_plugin)
    assert shown(reply) == [("ExAmple.ORG.", "A", 3600, "10.0.0.1")]


async def test_unknown_names_fall_through_only_when_told(tmp_path: Path) -> None:
    inline = "10.0.0.1 example.org"
    strict = await started(config(f"hosts {{\n{inline}\n}}", tmp_path))
    # No SOA to deny a name with: CoreDNS answers SERVFAIL (and logs no error).
    reply = await strict(request("other.org.", "A"), next_plugin)
    assert (reply.rcode, reply.error) == (SERVFAIL, "")
    every = await started(config(f"hosts {{\n{inline}\nfallthrough\n}}", tmp_path))
    assert await every(request("other.org.", "A"), next_plugin) is NEXT
    some = await started(config(f"hosts {{\n{inline}\nfallthrough other.org\n}}", tmp_path))
    assert await some(request("a.other.org.", "A"), next_plugin) is NEXT
    assert (await some(request("x.net.", "A"), next_plugin)).rcode == SERVFAIL
    # A known name's other types are NODATA, fallthrough or not.
    nodata = await every(request("example.org.", "TXT"), next_plugin)
    assert (nodata.rcode, nodata.answer, nodata.aa) == (NOERROR, (), True)


async def test_ptr_for_an_unknown_address_always_goes_on(tmp_path: Path) -> None:
    plugin = await started(config("hosts FILE example.org {\n10.0.0.1 example.org\n}", tmp_path))
    assert await plugin(request("9.9.9.9.in-addr.arpa.", "PTR"), next_plugin) is NEXT
    # PTR zones need not be among the plugin's zones.
    reply = await plugin(request("1.0.0.10.in-addr.arpa.", "PTR"), next_plugin)
    assert shown(reply) == [("1.0.0.10.in-addr.arpa.", "PTR", 3600, "example.org.")]
    # Names outside the zones are not the plugin's business at all.
    assert await plugin(request("example.net.", "A"), next_plugin) is NEXT


async def test_fallthrough_unsupported_passes_other_types_of_known_names(tmp_path: Path) -> None:
    text = "hosts {\n10.0.0.1 example.org\nfallthrough\nfallthrough_unsupported\n}"
    plugin = await started(config(text, tmp_path))
    assert await plugin(request("example.org.", "HTTPS"), next_plugin) is NEXT
    assert shown(await plugin(request("example.org.", "A"), next_plugin))[0][3] == "10.0.0.1"
    assert (await plugin(request("example.org.", "AAAA"), next_plugin)).answer == ()


async def test_options_ttl_and_no_reverse(tmp_path: Path) -> None:
    text = "hosts {\n10.0.0.1 example.org\nttl 60\nno_reverse\nfallthrough\n}"
    plugin = await started(config(text, tmp_path))
    assert shown(await plugin(request("example.org.", "A"), next_plugin))[0][2] == 60
    assert await plugin(request("1.0.0.10.in-addr.arpa.", "PTR"), next_plugin) is NEXT


async def test_answers_may_be_replayed_until_the_data_changes(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("10.0.0.1 example.org\n")
    plugin = await started(config("hosts FILE {\nfallthrough\n}", tmp_path))
    answered, passed = memo.Memo(), memo.Memo()
    for note, qname in ((answered, "example.org."), (passed, "example.net.")):
        token = memo.current.set(note)
        try:
            await plugin(request(qname, "A"), next_plugin)
        finally:
            memo.current.reset(token)
    assert answered.usable and not passed.allowed  # what falls through is for others to allow
    assert all(check() for check in answered.checks + passed.checks)
    hosts.write_text("10.0.0.2 example.org\n10.0.0.3 example.net\n")
    assert await plugin.refresh() is True
    assert not any(check() for check in answered.checks + passed.checks)
    assert await plugin.refresh() is False  # unchanged since: not read again


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("hosts {\nttl\n}", 3, "ttl needs a time in seconds"),
        ("hosts {\nttl 0\n}", 3, "ttl must be between 1 and 65535"),
        ("hosts {\nttl 65536\n}", 3, "ttl must be between 1 and 65535"),
        ("hosts {\nttl 1h\n}", 3, "ttl must be a whole number"),
        ("hosts {\nreload\n}", 3, "usage: reload DURATION"),
        ("hosts {\nreload 5\n}", 3, "needs a unit"),
        ("hosts {\nreload -5s\n}", 3, "invalid duration"),
        ("hosts {\nno_reverse please\n}", 3, "no_reverse takes no arguments"),
        ("hosts {\nfallthrough\n10.0.0.1 a.test\n}", 4, "unknown property '10.0.0.1'"),
        ("hosts {\nfallthrough_unsupported\n}", 2, "fallthrough_unsupported requires fallthrough"),
        ("hosts {\nfallthru\n}", 3, "'fallthru' is neither a property"),
        ("hosts {\n10.0.0.1 bad..name\n}", 3, "not a valid DNS name"),
        ("hosts {\n10.0.0.256 a.test\n}", 3, "'10.0.0.256' is not an IP address"),
        ("hosts\nhosts", 3, 'directive "hosts" can only be used once per server block'),
    ],
)
def test_refused_forms_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(CorefileError) as exc:
        parse_directive(text, "hosts")
    assert str(exc.value).startswith(f"Corefile:{line}: "), exc.value
    assert message in str(exc.value)


def test_defaults_and_arguments(tmp_path: Path) -> None:
    cfg = parse_directive("hosts", "hosts", "example.org")
    assert (cfg.path, cfg.zones, cfg.ttl, cfg.reverse, cfg.reload) == (
        "/etc/hosts",
        ("example.org.",),
        3600,
        True,
        5.0,
    )
    assert cfg.fallthrough is None
    cfg = parse_directive("hosts myhosts miek.nl 10.0.0.9/8 {\nreload 0\nfallthrough\n}", "hosts")
    assert cfg.path == "myhosts"  # beside the Corefile (here: the working directory)
    assert cfg.zones == ("miek.nl.", "10.in-addr.arpa.")
    assert (cfg.reload, cfg.fallthrough) == (0.0, ())


def test_a_file_that_cannot_be_looked_at_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        if (locked / "x").exists() or _can_search(locked):
            pytest.skip("running with privileges that ignore permissions")
        with pytest.raises(CorefileError, match="unable to access hosts file"):
            parse_directive(f"hosts {locked}/hosts", "hosts")
    finally:
        locked.chmod(0o755)


def _can_search(directory: Path) -> bool:
    try:
        (directory / "probe").stat()
    except PermissionError:
        return False
    except OSError:
        return True
    return True

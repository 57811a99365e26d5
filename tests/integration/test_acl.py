"""`acl`: allow, block (REFUSED + EDE 15), filter (NOERROR + EDE 17), drop, by type and source.

Loopback sources 127.0.0.1-3 stand for clients in different networks.
"""

from __future__ import annotations

from pathlib import Path

import dns.edns
import dns.exception
import dns.rcode
import pytest

from kdns.corefile import CorefileError
from tests.support.client import ask
from tests.support.plugins import parse_directive
from tests.support.server import running_kdns

CORE = """.:PORT {
 bind 127.0.0.1
 acl {
  allow net 127.0.0.1
  block type A net 127.0.0.2/32
  filter type AAAA net 127.0.0.0/8
  drop type TXT
 }
 acl example.org {
  block
 }
 whoami
}
"""


def ede(msg: dns.message.Message) -> list[int]:
    return [o.code for o in msg.options if isinstance(o, dns.edns.EDEOption)]


async def test_policies_by_type_and_source(tmp_path: Path) -> None:
    async with running_kdns(CORE, tmp_path) as srv:
        # 127.0.0.1 is allowed outright: the later rule for example.org is never checked.
        for qtype in ("A", "AAAA", "TXT"):
            msg = await ask(srv.port, "www.example.org.", qtype, source="127.0.0.1")
            assert msg.rcode() == dns.rcode.NOERROR and msg.additional, qtype
        msg = await ask(srv.port, "foo.test.", "A", source="127.0.0.2")
        assert msg.rcode() == dns.rcode.REFUSED and ede(msg) == [15]
        msg = await ask(srv.port, "foo.test.", "A", source="127.0.0.2", edns=None)
        assert msg.rcode() == dns.rcode.REFUSED and ede(msg) == [15]  # an OPT is added
        msg = await ask(srv.port, "foo.test.", "AAAA", source="127.0.0.2")
        assert msg.rcode() == dns.rcode.NOERROR and ede(msg) == [17]
        assert not msg.answer and not msg.additional
        with pytest.raises(dns.exception.Timeout):
            await ask(srv.port, "foo.test.", "TXT", source="127.0.0.3", timeout=0.5)
        # No policy of the first rule matches MX from .3; the second rule blocks example.org.
        msg = await ask(srv.port, "foo.test.", "MX", source="127.0.0.3")
        assert msg.rcode() == dns.rcode.NOERROR and msg.additional
        msg = await ask(srv.port, "mail.example.org.", "MX", source="127.0.0.3")
        assert msg.rcode() == dns.rcode.REFUSED
        # Answers allowed for one client are never re-served to a blocked one from bytes.
        for _ in range(3):
            assert (await ask(srv.port, "x.test.", "A", source="127.0.0.1")).additional
            msg = await ask(srv.port, "x.test.", "A", source="127.0.0.2")
            assert msg.rcode() == dns.rcode.REFUSED
        blocked = srv.registry.get_sample_value(
            "coredns_acl_blocked_requests_total",
            {"server": f"dns://127.0.0.1:{srv.port}", "zone": ".", "view": ""},
        )
        assert blocked == 5.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("deny net 10.0.0.0/8", "expect 'allow', 'block', 'filter' or 'drop'"),
        ("block net 10.0.0.0/33", "illegal CIDR notation"),
        ("block type NOPE", "expect legal QTYPE"),
        ("block type", "no token specified in 'type' section"),
        ("block from 10.0.0.1", "expect 'type | net'"),
    ],
)
def test_malformed_rules_are_refused(body: str, message: str) -> None:
    with pytest.raises(CorefileError) as err:
        parse_directive(f"acl {{\n {body}\n}}", "acl")
    assert str(err.value).startswith("Corefile:3: ")
    assert message in str(err.value)

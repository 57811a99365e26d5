"""`bind` with interface names: the server listens on the interface's addresses."""

from __future__ import annotations

from pathlib import Path

import dns.rcode
import pytest

from kdns.config import from_text
from kdns.corefile import CorefileError
from kdns.server.app import listen_addresses
from kdns.transport import interfaces
from tests.support.client import ask, rrs
from tests.support.server import running_kdns

LO = interfaces.addresses("lo") or []
HAS_V6 = "::1" in LO


def block_addresses(body: str) -> tuple[str, ...]:
    return listen_addresses(from_text(f".:1053 {{\n{body}\n}}\n", "Corefile").blocks[0])


def test_an_interface_stands_for_its_addresses() -> None:
    assert "127.0.0.1" in LO
    assert block_addresses("bind 1.2.3.4 lo") == ("1.2.3.4", *LO)
    if HAS_V6:
        assert block_addresses("bind lo {\nexcept 127.0.0.1\n}") == ("::1",)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("bind noone", 2, "neither an IP address nor an interface of this host"),
        ("bind 1.2.3.invalid", 2, "invalid IP address"),
        ("bind 127.0.0.1 {\nexcept nosuchif0\n}", 3, "nosuchif0"),
        ("bind 127.0.0.1 {\nexcept lo\n}", 2, "no address is left"),
    ],
)
def test_unknown_interfaces_are_refused_at_their_line(body: str, line: int, message: str) -> None:
    with pytest.raises(CorefileError) as err:
        from_text(f".:1053 {{\n{body}\n}}\n", "Corefile")
    assert str(err.value).startswith(f"Corefile:{line}: ") and message in str(err.value)


async def test_bind_lo_serves_on_the_loopback_addresses(tmp_path: Path) -> None:
    async with running_kdns(".:PORT {\n bind lo\n whoami\n}\n", tmp_path) as srv:
        for host in LO:
            for tcp in (False, True):
                msg = await ask(srv.port, "example.org.", "A", host=host, tcp=tcp)
                assert msg.rcode() == dns.rcode.NOERROR
                family = "AAAA" if ":" in host else "A"
                assert rrs(msg, "additional")[0] == ("example.org.", family, host)

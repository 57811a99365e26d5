"""Host and port text: the one reader of optional ports (upstreams, `diagnose --server`)."""

from __future__ import annotations

import pytest

from kdns.hostport import show, split_optional


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("10.0.0.1", ("10.0.0.1", None)),
        ("10.0.0.1:5353", ("10.0.0.1", "5353")),
        ("dns.example", ("dns.example", None)),
        ("::1", ("::1", None)),
        ("fd00::a:53", ("fd00::a:53", None)),  # a bare IPv6 address keeps every group
        ("[::1]", ("::1", None)),
        ("[::1]:5353", ("::1", "5353")),
        ("[::1]:x", ("::1", "x")),  # the caller judges the port
    ],
)
def test_split_optional(text: str, want: tuple[str, str | None]) -> None:
    assert split_optional(text) == want


@pytest.mark.parametrize("text", ["[::1", "[::1]53", "[::1]x:53"])
def test_split_optional_refuses_broken_brackets(text: str) -> None:
    with pytest.raises(ValueError):
        split_optional(text)


def test_show_brackets_ipv6_only() -> None:
    assert show("::1", 53) == "[::1]:53"
    assert show("127.0.0.1", 53) == "127.0.0.1:53"
    assert show("", 8080) == ":8080"

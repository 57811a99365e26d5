"""fast_init keeps a frozen dataclass exactly what it was, built faster."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from kdns.dns.frozen import fast_init
from kdns.dns.message import Reply, Request


@fast_init
@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 7
    tags: tuple[str, ...] = ()


def test_same_values_defaults_and_keywords() -> None:
    assert Point(1) == Point(1, 7, ())
    assert Point(y=2, x=1) == Point(1, 2)
    assert Point(1, tags=("a",)).tags == ("a",)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert repr(Point(3)) == "Point(x=3, y=7, tags=())"


def test_still_frozen_and_replace_works() -> None:
    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 5  # type: ignore[misc]
    assert dataclasses.replace(p, y=9) == Point(1, 9)


def test_missing_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]


def test_refuses_fields_it_cannot_honour() -> None:
    with pytest.raises(TypeError, match="plain dataclass fields"):

        @fast_init
        @dataclass(frozen=True, slots=True)
        class WithFactory:
            items: list[int] = field(default_factory=list)


def test_query_values_use_it() -> None:
    req = Request(1, "A.example.", "a.example.", 1, 1, 0, None, "udp", "127.0.0.1")
    assert (req.port, req.size, req.authority) == (0, 0, ())
    assert dataclasses.replace(req, qtype=28).qtype == 28
    assert Reply(3).answer == ()

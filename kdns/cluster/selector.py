"""Kubernetes label selectors (`app=web,tier!=db,env in (a,b),!legacy,canary`), parsed once."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SET = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*$")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values


@dataclass(frozen=True, slots=True)
class Selector:
    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Iterable[tuple[str, str]]) -> bool:
        as_dict = dict(labels)
        return all(r.matches(as_dict) for r in self.requirements)


def _split(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse(text: str) -> Selector:
    """Parse a selector; raises ValueError naming the part that is not understood."""
    reqs = []
    for part in _split(text):
        if m := _SET.match(part):
            neg, key, op, vals = m.groups()
            if neg:
                raise ValueError(f"unexpected '!' in {part.strip()!r}")
            values = frozenset(v.strip() for v in vals.split(",") if v.strip())
            reqs.append(Requirement(key, op, values))
        elif m := _EQ.match(part):
            key, op, val = m.groups()
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([val])))
        elif m := _EXISTS.match(part):
            neg, key = m.groups()
            reqs.append(Requirement(key, "!exists" if neg else "exists", frozenset()))
        else:
            raise ValueError(f"cannot parse label selector part {part.strip()!r}")
    if not reqs:
        raise ValueError("empty label selector")
    return Selector(text, tuple(reqs))

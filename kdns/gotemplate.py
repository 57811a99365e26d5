"""The part of Go's text/template that CoreDNS's `template` plugin documents, as a small language
that can only read the data it is given.

Text with `{{ ACTION }}`s (and the `{{-`/`-}}` trims and `{{/* comments */}}`). An action is a
pipeline of commands joined by `|`, the value on the left becoming the last argument of the
command on the right; a command is a field chain (`.Name`, `.Group.a`, `.Meta "x"`, `.`), a
string, raw string or integer literal, a parenthesised pipeline, or a call of `index` or
`parseInt` (Go's strconv.ParseUint). Variables, `if`/`range`/`with` and every other function
are refused when the template is read, so a template never loops, never allocates without
bound and never reaches anything but its data.

Values print as Go's fmt does for the types the data holds: strings as they are, integers in
decimal, lists as `[a b]`, maps as `map[k:v]`, and a key missing from a map as `<no value>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_OUTPUT = 65535  # a rendered record is one RR's text; more is a mistake, not a record


class TemplateError(ValueError):
    """A template that cannot be read, or that failed on the data it was given."""


class _Missing:
    def __str__(self) -> str:
        return "<no value>"


MISSING = _Missing()


class Data:
    """Data with named fields; a field that is a callable is a method (`.Meta "name"`)."""

    fields: Mapping[str, Any]

    def __init__(self, fields: Mapping[str, Any], text: str = "") -> None:
        self.fields = fields
        self.text = text

    def __str__(self) -> str:
        return self.text


# --- reading ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|\d[\d_]*))
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[()|])
    | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "a": "\a", "0": "\0"}


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class _Field:
    path: tuple[str, ...]  # () is `.`


@dataclass(frozen=True, slots=True)
class _Call:
    func: str  # "" when the command is an operand (a field with arguments is a method call)
    args: tuple[Any, ...]


Pipeline = tuple[_Call, ...]


def _string(text: str) -> str:
    out: list[str] = []
    i = 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt not in _ESCAPES:
                raise TemplateError(f"unsupported escape \\{nxt} in {text}")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokens(action: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(action):
        m = _TOKEN.match(action, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup
        assert kind is not None
        if kind == "bad":
            raise TemplateError(f"unexpected {m.group(kind)!r} in {{{{{action}}}}}")
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


FUNCTIONS = ("index", "parseInt")


class _Reader:
    def __init__(self, action: str) -> None:
        self.action = action
        self.toks = _tokens(action)
        self.i = 0

    def fail(self, why: str) -> TemplateError:
        return TemplateError(f"{why} in {{{{{self.action}}}}}")

    def pipeline(self, depth: int = 0) -> Pipeline:
        if depth > 8:
            raise self.fail("parentheses nested too deep")
        calls = [self.command(depth)]
        while self.i < len(self.toks) and self.toks[self.i] == ("punct", "|"):
            self.i += 1
            calls.append(self.command(depth))
        return tuple(calls)

    def command(self, depth: int) -> _Call:
        func = ""
        if self.i < len(self.toks) and self.toks[self.i][0] == "ident":
            name = self.toks[self.i][1]
            if name not in FUNCTIONS:
                raise self.fail(
                    f"{name!r} is not supported (fields, literals, index and parseInt are)"
                )
            func = name
            self.i += 1
        args: list[Any] = []
        while self.i < len(self.toks) and self.toks[self.i] not in (("punct", "|"), ("punct", ")")):
            args.append(self.operand(depth))
        if not func and not args:
            raise self.fail("missing value")
        return _Call(func, tuple(args))

    def operand(self, depth: int) -> Any:
        kind, text = self.toks[self.i]
        self.i += 1
        if kind == "str":
            return _Lit(_string(text))
        if kind == "raw":
            return _Lit(text[1:-1])
        if kind == "num":
            return _Lit(int(text, 0))
        if kind == "field":
            return _Field(tuple(p for p in text.split(".") if p))
        if (kind, text) == ("punct", "("):
            inner = self.pipeline(depth + 1)
            if self.i >= len(self.toks) or self.toks[self.i] != ("punct", ")"):
                raise self.fail("unclosed (")
            self.i += 1
            return inner
        if kind == "ident":
            raise self.fail(f"function {text!r} in argument position needs parentheses")
        raise self.fail(f"unexpected {text!r}")


Part = str | Pipeline


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[Part, ...]

    @property
    def fields(self) -> frozenset[str]:
        """The top-level fields the template reads (`.Remote` makes it depend on the client)."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, _Field) and node.path:
                found.add(node.path[0])
            elif isinstance(node, _Call):
                for a in node.args:
                    walk(a)
            elif isinstance(node, tuple):
                for n in node:
                    walk(n)

        for part in self.parts:
            if not isinstance(part, str):
                walk(part)
        return frozenset(found)

    def render(self, data: Data) -> str:
        out: list[str] = []
        size = 0
        for part in self.parts:
            text = part if isinstance(part, str) else _show(_pipeline(part, data))
            size += len(text)
            if size > MAX_OUTPUT:
                raise TemplateError(f"output longer than {MAX_OUTPUT} characters")
            out.append(text)
        return "".join(out)


def parse(source: str) -> Template:
    """Read a template; raises TemplateError saying what is wrong."""
    parts: list[Part] = []
    pos = 0
    while True:
        start = source.find("{{", pos)
        if start < 0:
            parts.append(source[pos:])
            break
        text = source[pos:start]
        body_start = start + 2
        if source.startswith("{{- ", start) or source.startswith("{{-\t", start):
            text = text.rstrip()
            body_start += 1
        parts.append(text)
        end = source.find("}}", body_start)
        if end < 0:
            raise TemplateError(f"unclosed action in {source!r}")
        body = source[body_start:end]
        pos = end + 2
        if body.endswith((" -", "\t-")):
            body = body[:-1]
            stripped = source[pos:].lstrip()
            pos = len(source) - len(stripped)
        if body.strip().startswith("/*"):
            if not body.strip().endswith("*/"):
                raise TemplateError(f"unclosed comment in {source!r}")
            continue
        reader = _Reader(body)
        if not reader.toks:
            raise TemplateError(f"missing value for command in {source!r}")
        pipe = reader.pipeline()
        if reader.i != len(reader.toks):
            raise reader.fail(f"unexpected {reader.toks[reader.i][1]!r}")
        parts.append(pipe)
    return Template(source, tuple(p for p in parts if p != ""))


# --- running ---------------------------------------------------------------------------------


def _pipeline(pipe: Pipeline, data: Data) -> Any:
    value: Any = None
    for n, call in enumerate(pipe):
        piped = [value] if n > 0 else []
        value = _call(call, piped, data)
    return value


def _value(node: Any, data: Data) -> Any:
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Field):
        return _field(node.path, data, ())
    return _pipeline(node, data)


def _call(call: _Call, piped: list[Any], data: Data) -> Any:
    if call.func:
        args = [_value(a, data) for a in call.args] + piped
        return _index(args) if call.func == "index" else _parse_int(args)
    first, rest = call.args[0], call.args[1:]
    extra = [_value(a, data) for a in rest] + piped
    if isinstance(first, _Field) and extra:
        return _field(first.path, data, tuple(extra))  # a method with arguments
    if extra:
        raise TemplateError(f"can't give argument to non-function {_show(_value(first, data))}")
    return _value(first, data)


def _field(path: tuple[str, ...], data: Data, args: tuple[Any, ...]) -> Any:
    value: Any = data
    for n, name in enumerate(path):
        if isinstance(value, Data):
            if name not in value.fields:
                raise TemplateError(f"can't evaluate field {name}")
            value = value.fields[name]
        elif isinstance(value, Mapping):
            value = value.get(name, MISSING)
        else:
            raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
        if callable(value):
            last = n == len(path) - 1
            value = value(*(args if last else ()))
            if last:
                return value
    if args:
        raise TemplateError(f"{'.'.join(path)} is not a method but has arguments")
    return value


def _index(args: list[Any]) -> Any:
    if not args:
        raise TemplateError("wrong number of args for index: want at least 1 got 0")
    value = args[0]
    for key in args[1:]:
        if isinstance(value, Mapping):
            if not isinstance(key, str):
                raise TemplateError(f"index of map with non-string key {key!r}")
            value = value.get(key, "")  # Go's index gives the zero value for a missing key
        elif isinstance(value, Sequence) and not isinstance(value, str):
            if not isinstance(key, int):
                raise TemplateError(f"cannot index slice/array with type {type(key).__name__}")
            if not 0 <= key < len(value):
                raise TemplateError(f"error calling index: index out of range: {key}")
            value = value[key]
        else:
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _parse_int(args: list[Any]) -> int:
    """strconv.ParseUint(s, base, bitSize) with its errors."""
    if len(args) != 3:
        raise TemplateError(f"wrong number of args for parseInt: want 3 got {len(args)}")
    s, base, bits = args
    if not isinstance(s, str) or not isinstance(base, int) or not isinstance(bits, int):
        raise TemplateError("parseInt takes a string, a base and a bit size")
    text = s.lower()
    if base == 0:
        base = 10
        if text.startswith(("0x", "0o", "0b")):
            base = {"x": 16, "o": 8, "b": 2}[text[1]]
            text = text[2:]
        elif text.startswith("0") and len(text) > 1:
            base, text = 8, text[1:]
        text = text.replace("_", "")
    if not 2 <= base <= 36:
        raise TemplateError(f'strconv.ParseUint: parsing "{s}": invalid base {base}')
    if bits == 0:
        bits = 64
    if not 0 < bits <= 64:
        raise TemplateError(f'strconv.ParseUint: parsing "{s}": invalid bit size {bits}')
    if not text or any(ch not in _DIGITS[:base] for ch in text):
        raise TemplateError(f'strconv.ParseUint: parsing "{s}": invalid syntax')
    value = int(text, base)
    if value >= 1 << bits:
        raise TemplateError(f'strconv.ParseUint: parsing "{s}": value out of range')
    return value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_show(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, Sequence):
        return "[" + " ".join(_show(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)

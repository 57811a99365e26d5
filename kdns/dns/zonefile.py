"""RFC 1035 master files (zone files) as CoreDNS's `file` plugin reads them: text in, records out.

dnslib's lexer splits the text (quotes, `;` comments) and its rdata classes read each record's
data; this module adds what a zone file needs around them, as miekg/dns's zone parser does:
line numbers for errors, `$ORIGIN`, `$TTL` and `$INCLUDE`, a blank owner meaning the previous
one, TTL and class in either order, BIND-style TTL units (`1h30m`, `2d`), type names in any
case, and the TTL default (the last TTL given, else 3600). Owner names are lower-cased, as
CoreDNS stores them.

No I/O: `$INCLUDE` asks the caller's `include` function for the text of the named file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dnslib import RDMAP, DNSLabel
from dnslib.lex import WordLexer

from kdns.dns import names, rrtext
from kdns.dns.records import (
    AAAA,
    CLASS_CH,
    CLASS_IN,
    RR,
    SOA,
    A,
    a,
    aaaa,
    type_from_text,
    type_name,
)

DEFAULT_TTL = 3600
MAX_INCLUDE_DEPTH = 7  # miekg/dns's limit on nested $INCLUDEs
_CLASSES = {"IN": CLASS_IN, "CH": CLASS_CH, "HS": 4, "CS": 2}
_TTL = re.compile(r"(\d+)([smhdw]?)", re.IGNORECASE)
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# Name fields dnslib's readers leave relative (they qualify CNAME, NS, MX, SOA themselves).
_NAME_FIELDS = {"SRV": 3, "RRSIG": 7, "NSEC": 0}

# Types whose rdata is written like another's that dnslib reads.
_READ_AS = {"DNAME": "CNAME", "SPF": "TXT"}

# (shown name, text) of an included file, given the name as written after $INCLUDE.
Include = Callable[[str], tuple[str, str]]


class ZoneFileError(ValueError):
    """A zone file that cannot be read; says `file:line: why`."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass(slots=True)
class _State:
    origin: str
    default_ttl: int | None = None  # $TTL
    last_ttl: int | None = None  # the last TTL a record gave
    owner: str | None = None


def parse(text: str, origin: str, file: str, include: Include | None = None) -> list[RR]:
    """The records of the zone file `text` read with `origin` (`file` names it in errors).

    Checks what CoreDNS checks for a zone: there is an SOA and the first one is at the origin.
    """
    origin = names.normalize(origin)
    out = list(_records(text, _State(origin), file, include, 0))
    soa = next((r for r in out if r.rtype == SOA), None)
    if soa is None:
        raise ZoneFileError(file, 1, f"no SOA record for origin {origin}")
    if soa.name != origin:
        raise ZoneFileError(file, 1, f"SOA owner {soa.name} that does not match origin {origin}")
    return out


def ttl_value(text: str) -> int:
    """A TTL in seconds: `300`, or BIND's units `1h30m`, `2d`, `1w` (ValueError otherwise)."""
    pos = total = 0
    for m in _TTL.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _TTL_UNITS[m.group(2).lower()]
        pos = m.end()
    if not text or pos != len(text) or total > 0xFFFFFFFF:
        raise ValueError(f"invalid TTL {text!r}")
    return total


def _tokens(text: str) -> list[tuple[str, str | None]]:
    lexer = WordLexer(text)
    lexer.commentchars = ";"
    lexer.nltok = ("NL", None)
    lexer.spacetok = ("SPACE", None)
    return list(lexer)


def _lines(text: str) -> Iterator[tuple[int, bool, list[str]]]:
    """(first line, owner left blank, tokens) of each entry; parentheses join lines.

    Each line is lexed on its own: dnslib's lexer folds runs of newlines into one token, which
    would lose the line numbers errors report."""
    start = 1
    tokens: list[str] = []
    depth = 0
    blank = False
    for line, physical in enumerate(text.splitlines(), 1):
        try:
            lexed = _tokens(physical)
        except Exception as exc:  # the lexer's own complaints (an unterminated quote, ...)
            raise ZoneFileError("", line, f"cannot read the text: {exc}") from None
        indented = bool(lexed) and lexed[0][0] == "SPACE"
        for kind, value in lexed:
            if kind != "ATOM" or value is None:
                continue  # spaces, comments
            if not tokens and depth == 0:
                start, blank = line, indented
            if value == "(":
                depth += 1
            elif value == ")":
                if depth == 0:
                    raise ZoneFileError("", line, "unbalanced ')'")
                depth -= 1
            else:
                tokens.append(value)
        if depth == 0 and tokens:
            yield start, blank, tokens
            tokens = []
    if depth:
        raise ZoneFileError("", start, "unbalanced '('")


def _records(
    text: str, state: _State, file: str, include: Include | None, depth: int
) -> Iterator[RR]:
    try:
        for line, blank, tokens in _lines(text):
            try:
                if tokens[0].startswith("$"):
                    yield from _directive(tokens, state, file, include, depth)
                else:
                    yield _record(tokens, blank, state)
            except ZoneFileError:
                raise
            except ValueError as exc:
                raise ZoneFileError(file, line, str(exc)) from None
    except ZoneFileError as exc:
        if exc.file:
            raise
        raise ZoneFileError(file, exc.line, exc.message) from None


def _directive(
    tokens: list[str], state: _State, file: str, include: Include | None, depth: int
) -> Iterator[RR]:
    word = tokens[0].upper()
    if word == "$ORIGIN" and len(tokens) == 2:
        state.origin = _absolute(tokens[1], state.origin)
        return
    if word == "$TTL" and len(tokens) == 2:
        state.default_ttl = ttl_value(tokens[1])
        return
    if word == "$INCLUDE" and len(tokens) in (2, 3):
        if include is None:
            raise ValueError("$INCLUDE is not allowed here")
        if depth >= MAX_INCLUDE_DEPTH:
            raise ValueError(f"too deeply nested $INCLUDE ({MAX_INCLUDE_DEPTH} levels)")
        shown, body = include(tokens[1])
        origin = _absolute(tokens[2], state.origin) if len(tokens) == 3 else state.origin
        # The included file starts from the given origin; the includer's own state resumes.
        inner = _State(origin, state.default_ttl, state.last_ttl, state.owner)
        yield from _records(body, inner, shown, include, depth + 1)
        return
    if word in ("$ORIGIN", "$TTL", "$INCLUDE"):
        raise ValueError(f"wrong number of arguments for {word}")
    raise ValueError(f"unknown control entry {tokens[0]!r} (expected $ORIGIN, $TTL, $INCLUDE)")


def _absolute(name: str, origin: str) -> str:
    if name == "@":
        return origin
    if name.endswith(".") and not name.endswith("\\."):
        return names.normalize(name)
    return names.normalize(name + "." + origin if origin != "." else name + ".")


def _record(tokens: list[str], blank: bool, state: _State) -> RR:
    rest = list(tokens)
    if blank:
        if state.owner is None:
            raise ValueError("a record without an owner name, and none before it")
        owner = state.owner
    else:
        owner = _absolute(rest.pop(0), state.origin)
    ttl: int | None = None
    rclass = CLASS_IN
    for _ in range(2):  # [TTL] [CLASS] in either order
        if not rest:
            break
        word = rest[0]
        if word.upper() in _CLASSES:
            rclass = _CLASSES[word.upper()]
            rest.pop(0)
        elif word[:1].isdigit() and ttl is None:
            ttl = ttl_value(word)
            rest.pop(0)
    if not rest:
        raise ValueError(f"no record type for {owner}")
    rtype = type_from_text(rest.pop(0))
    if ttl is None:
        ttl = next(t for t in (state.default_ttl, state.last_ttl, DEFAULT_TTL) if t is not None)
    else:
        state.last_ttl = ttl
    state.owner = owner
    return RR(owner, rtype, ttl, _rdata(rtype, rest, state.origin), rclass)


def _rdata(rtype: int, fields: list[str], origin: str) -> bytes:
    name = type_name(rtype)
    if rtype in (A, AAAA) and len(fields) == 1:
        # The common case, read directly: faster, and a clear message for a bad address.
        try:
            return (a if rtype == A else aaaa)(origin, 0, fields[0]).rdata
        except ValueError as exc:
            raise ValueError(f"bad {name} data: {exc}") from None
    if fields[:1] == ["\\#"]:  # RFC 3597 generic form works for any type
        return _generic(fields)
    reader = RDMAP.get(_READ_AS.get(name, name))
    if reader is None:
        raise ValueError(f"record type {name} is not supported in zone files (use \\# LENGTH HEX)")
    if not fields:
        raise ValueError(f"{name} record without data")
    fields = list(fields)
    at = _NAME_FIELDS.get(name)
    if at is not None and at < len(fields):
        fields[at] = _absolute(fields[at], origin)
    try:
        rdata = reader.fromZone(fields, DNSLabel(origin))
    except Exception as exc:  # dnslib raises many kinds for bad rdata text
        raise ValueError(f"bad {name} data {' '.join(fields)!r}: {exc}") from None
    try:
        return rrtext.pack(rdata)
    except ValueError as exc:
        raise ValueError(f"bad {name} data {' '.join(fields)!r}: {exc}") from None


def _generic(fields: list[str]) -> bytes:
    if len(fields) < 2 or not fields[1].isdigit():
        raise ValueError("generic rdata is \\# LENGTH HEX")
    try:
        data = bytes.fromhex("".join(fields[2:]))
    except ValueError:
        raise ValueError("generic rdata: bad hex") from None
    if len(data) != int(fields[1]):
        raise ValueError(f"generic rdata: {len(data)} bytes, not {fields[1]}")
    return data

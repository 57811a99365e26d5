"""The request rules of `rewrite`: name, type, class, ttl and rcode, read from their tokens.

Each rule looks at the request as the rules before it left it. A rule that applies returns the
rewritten request and the response rules that undo or adjust what comes back (see answers.py);
one that does not apply returns None. Names are matched lower-cased with their trailing dot, and
the FROM/TO names of exact, prefix, suffix and substring matches are made absolute as CoreDNS
does (`prefix foo` matches `foo.` only, not `foobar.`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from dnslib import QTYPE

from kdns.corefile import Token
from kdns.dns import names
from kdns.dns.message import Reply, Request
from kdns.plugins.rewrite.answers import (
    ResponseRule,
    both,
    change_rcode,
    clamp_ttl,
    regex_map,
    remap,
    rename,
    revalue,
    substitute,
    suffix_map,
)

STOP = "stop"
CONTINUE = "continue"
KINDS = ("exact", "prefix", "suffix", "substring", "regex")
MAX_REGEX = 10_000  # CoreDNS refuses longer patterns too
MAX_TTL = 2_147_483_647  # RFC 2181 8: the top of an open range `MIN-`
MAX_U32 = 4_294_967_295
CLASSES = {"IN": 1, "CS": 2, "CH": 3, "HS": 4, "NONE": 254, "ANY": 255}
# miekg/dns's rcode names CoreDNS accepts (16 is spelled BADSIG there), or a number up to 23.
RCODES = {
    "NOERROR": 0,
    "FORMERR": 1,
    "SERVFAIL": 2,
    "NXDOMAIN": 3,
    "NOTIMP": 4,
    "REFUSED": 5,
    "YXDOMAIN": 6,
    "YXRRSET": 7,
    "NXRRSET": 8,
    "NOTAUTH": 9,
    "NOTZONE": 10,
    "BADSIG": 16,
    "BADKEY": 17,
    "BADTIME": 18,
    "BADMODE": 19,
    "BADNAME": 20,
    "BADALG": 21,
    "BADTRUNC": 22,
    "BADCOOKIE": 23,
}

# What undoes a rule on the reply: most rules map it at once; `cname` looks records up.
Undo = Callable[[Reply], Reply | Awaitable[Reply]]
Applied = tuple[Request, tuple[Undo, ...]]


def compile_regex(tok: Token, replacement: str = "") -> re.Pattern[str]:
    """A pattern, refused when it does not compile or `replacement` uses more `{N}` groups
    than it has (CoreDNS counts `{0}` too)."""
    if len(tok.text) > MAX_REGEX:
        raise tok.error(f"regex pattern too long ({len(tok.text)} > {MAX_REGEX} characters)")
    try:
        pattern = re.compile(tok.text)
    except re.error as exc:
        raise tok.error(f"invalid regex matching pattern: {tok.text} ({exc})") from None
    used = sum(1 for i in range(101) if f"{{{i}}}" in replacement)
    if used > pattern.groups:
        raise tok.error(
            f"the rewrite regex pattern ({replacement}) uses more subexpressions than its "
            f"corresponding matching regex pattern ({tok.text})"
        )
    return pattern


@dataclass(frozen=True, slots=True)
class Matcher:
    """Which question names a rule applies to."""

    kind: str
    text: str  # absolute lower-case name, or the regex source
    pattern: re.Pattern[str] | None = None

    def matches(self, name: str) -> bool:
        if self.kind == "exact":
            return name == self.text
        if self.kind == "prefix":
            return name.startswith(self.text)
        if self.kind == "suffix":
            return name.endswith(self.text)
        if self.kind == "substring":
            return self.text in name
        assert self.pattern is not None
        return self.pattern.search(name) is not None


def matcher(kind_tok: Token | None, name_tok: Token, field: str) -> Matcher:
    kind = "exact" if kind_tok is None else kind_tok.text.lower()
    if kind == "regex":
        return Matcher(kind, name_tok.text, compile_regex(name_tok))
    if kind not in KINDS:
        assert kind_tok is not None
        raise kind_tok.error(bad_kind(field, kind_tok.text))
    return Matcher(kind, names.normalize(name_tok.text))


def bad_kind(field: str, got: str) -> str:
    hint = ""
    if got.lower() in (STOP, CONTINUE):
        hint = f' ("{got}" goes before the field: rewrite {got.lower()} {field} ...)'
    return (
        f"{field} rule supports only exact, prefix, suffix, substring, and regex name matching, "
        f"received: {got}{hint}"
    )


@dataclass(frozen=True, slots=True)
class NameRule:
    mode: str
    match: Matcher
    target: str  # the replacement; `{N}` groups for regex
    auto: bool  # map the rewritten name back to the asked one in names and values
    answers: tuple[ResponseRule, ...] = ()
    per_client = False

    def rewritten(self, name: str) -> str | None:
        m, kind = self.match, self.match.kind
        if kind == "regex":
            assert m.pattern is not None
            found = m.pattern.search(name)
            return None if found is None else substitute(self.target, found)
        if not m.matches(name):
            return None
        if kind == "exact":
            return self.target
        if kind == "prefix":
            return self.target + name[len(m.text) :]
        if kind == "suffix":
            return name[: len(name) - len(m.text)] + self.target
        return name.replace(m.text, self.target)

    def apply(self, request: Request) -> Applied | None:
        new = self.rewritten(request.name)
        if new is None:
            return None
        # An invalid result raises ValueError here; the plugin answers SERVFAIL for it.
        out = replace(request, qname=new, name=new.lower(), qname_wire=names.to_wire(new))
        if not self.auto:
            return out, self.answers
        return out, (*both(remap(new, request.name)), *self.answers)


def parse_name(mode: str, head: Token, args: list[Token]) -> NameRule:
    if len(args) < 2:
        raise head.error("too few arguments for a name rule: usage: name [TYPE] FROM TO")
    kind_tok = args[0] if len(args) >= 3 else None
    from_tok, to_tok = (args[1], args[2]) if kind_tok is not None else (args[0], args[1])
    kind = "exact" if kind_tok is None else kind_tok.text.lower()
    auto, extra = parse_answers(kind, args[3:]) if len(args) > 3 else (False, ())
    if kind == "regex":
        pattern = compile_regex(from_tok, to_tok.text)
        target = names.normalize(to_tok.text)
        return NameRule(mode, Matcher(kind, from_tok.text, pattern), target, auto, extra)
    match = matcher(kind_tok, from_tok, "name")
    target = names.normalize(to_tok.text)
    if kind == "exact":
        return NameRule(mode, match, target, True, extra)
    if kind == "suffix" and auto:
        # The suffix swapped back is exact for every name below it: no per-query mapping.
        reverse = both(suffix_map(target, match.text))
        return NameRule(mode, match, target, False, (*reverse, *extra))
    return NameRule(mode, match, target, auto, extra)


def parse_answers(kind: str, args: list[Token]) -> tuple[bool, tuple[ResponseRule, ...]]:
    """`answer auto`, `answer name FROM TO`, `answer value FROM TO`, in any number; after the
    first `answer` the keyword may be left out (CoreDNS reads the tokens the same way)."""
    if len(args) < 2:
        raise args[0].error(f"invalid arguments for {kind} rule: expected answer auto|name|value")
    auto = False
    rules: list[ResponseRule] = []
    named = 0
    i = 0
    while i < len(args):
        tok = args[i]
        if i == 0 and tok.text != "answer":
            raise tok.error(
                f"exceeded the number of arguments for a non-answer rule argument for {kind} "
                f"rule: {tok.text!r} (expected answer auto|name|value)"
            )
        if tok.text == "answer":
            i += 1
            if i == len(args):
                raise tok.error(f"type missing for answer rule for {kind} rule")
        what = args[i]
        i += 1
        if what.text == "auto":
            auto = True
            continue
        if what.text not in ("name", "value"):
            raise what.error(f"invalid type {what.text!r} for answer rule for {kind} rule")
        if len(args) - i < 2:
            raise what.error(f"{what.text} answer rule for {kind} rule: 2 arguments required")
        target = args[i + 1].text
        pattern = compile_regex(args[i], target)
        mapping = regex_map(pattern, names.normalize(target))
        if what.text == "name":
            rules.append(rename(mapping))
            named += 1
        else:
            rules.append(revalue(mapping))
        i += 2
    if auto and named:
        raise args[0].error("auto name answer rule cannot be combined with explicit name rules")
    return auto, tuple(rules)


@dataclass(frozen=True, slots=True)
class TypeRule:
    mode: str
    old: int
    new: int
    per_client = False

    def apply(self, request: Request) -> Applied | None:
        if request.qtype != self.old:
            return None
        return replace(request, qtype=self.new), ()


@dataclass(frozen=True, slots=True)
class ClassRule:
    mode: str
    old: int
    new: int
    per_client = False

    def apply(self, request: Request) -> Applied | None:
        if request.qclass != self.old:
            return None
        return replace(request, qclass=self.new), ()


def _two(head: Token, args: list[Token]) -> None:
    if len(args) != 2:
        raise head.error(f"{head.text.lower()} rules must have exactly two arguments")


def _qtype(tok: Token) -> int:
    try:
        return int(QTYPE.reverse[tok.text.upper()])
    except KeyError:
        raise tok.error(f"invalid type {tok.text.upper()!r}") from None


def _qclass(tok: Token) -> int:
    value = CLASSES.get(tok.text.upper())
    if value is None:
        raise tok.error(f"invalid class {tok.text.upper()!r} (IN, CH, HS, ...)")
    return value


def parse_type(mode: str, head: Token, args: list[Token]) -> TypeRule:
    _two(head, args)
    return TypeRule(mode, _qtype(args[0]), _qtype(args[1]))


def parse_class(mode: str, head: Token, args: list[Token]) -> ClassRule:
    _two(head, args)
    return ClassRule(mode, _qclass(args[0]), _qclass(args[1]))


@dataclass(frozen=True, slots=True)
class ResponseOnlyRule:
    """ttl and rcode: the request is left alone, the reply of a matching question adjusted."""

    mode: str
    match: Matcher
    response: ResponseRule
    per_client = False

    def apply(self, request: Request) -> Applied | None:
        if not self.match.matches(request.name):
            return None
        return request, (self.response,)


def _matched(
    field: str, head: Token, args: list[Token], values: int
) -> tuple[Matcher, list[Token]]:
    """`[TYPE] NAME VALUE...`: the matcher and the `values` value tokens."""
    if len(args) < 1 + values:
        raise head.error(f"too few ({len(args)}) arguments for a {field} rule")
    if len(args) > 2 + values:
        raise args[2 + values].error(f"too many arguments for a {field} rule")
    if len(args) == 1 + values:
        return matcher(None, args[0], field), args[1:]
    return matcher(args[0], args[1], field), args[2:]


def ttl_range(tok: Token) -> tuple[int, int]:
    """`SECONDS`, or a range `MIN-MAX`, `MIN-` or `-MAX` the TTLs are clamped into (so `-1`
    is the range 0-1, as CoreDNS reads it)."""
    low_text, dash, high_text = tok.text.partition("-")

    def number(text: str, default: int) -> int:
        if not text:
            return default
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_U32:
            raise tok.error(f"invalid TTL {tok.text!r} for a ttl rule")
        return int(text)

    if not dash:
        value = number(low_text, -1)
        return value, value
    if not low_text and not high_text:
        raise tok.error(f"invalid TTL {tok.text!r} for a ttl rule")
    low, high = number(low_text, 0), number(high_text, MAX_TTL)
    if low > high:
        raise tok.error(f"invalid TTL range {tok.text!r}: the minimum is above the maximum")
    return low, high


def parse_ttl(mode: str, head: Token, args: list[Token]) -> ResponseOnlyRule:
    match, (value,) = _matched("ttl", head, args, 1)
    return ResponseOnlyRule(mode, match, clamp_ttl(*ttl_range(value)))


def rcode(tok: Token, which: str) -> int:
    text = tok.text
    if text.isascii() and text.isdigit() and int(text) <= 23:
        return int(text)
    value = RCODES.get(text.upper())
    if value is None:
        raise tok.error(f"invalid {which} RCODE {text!r} for a rcode rule")
    return value


def parse_rcode(mode: str, head: Token, args: list[Token]) -> ResponseOnlyRule:
    match, (old, new) = _matched("rcode", head, args, 2)
    change = change_rcode(rcode(old, "matching"), rcode(new, "replacement"))
    return ResponseOnlyRule(mode, match, change)

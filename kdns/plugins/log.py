"""`log [NAMES...] [FORMAT] { class CLASSES...; minDuration DURATION }`: the query log.

One line per answered query, at INFO, in CoreDNS's Common Log Format by default:
`{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode}
{>rflags} {rsize} {duration}`. NAMES limit logging to names under them (first match wins);
`class` keeps only success, denial (NXDOMAIN/NODATA) or error replies; `minDuration` also logs
replies slower than DURATION. Without `log` in the Corefile nothing is logged per query.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.dns import names, wire
from kdns.dns.message import Reply, Request, rcode_name
from kdns.dns.records import type_name
from kdns.dns.response import classify
from kdns.hostport import bracket
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

log = logging.getLogger("kdns.query")

COMMON = (
    '{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" '
    "{rcode} {>rflags} {rsize} {duration}"
)
COMBINED = COMMON + ' "{>opcode}"'
CLASSES = ("success", "denial", "error", "all")
_PLACEHOLDER = re.compile(r"\{[^{}]+\}")
_FLAG_BITS = (
    ("qr", 0x8000),
    ("aa", 0x0400),
    ("tc", 0x0200),
    ("rd", 0x0100),
    ("ra", 0x0080),
    ("z", 0x0040),
    ("ad", 0x0020),
    ("cd", 0x0010),
)


@dataclass(frozen=True, slots=True)
class Rule:
    scope: str
    format: str
    classes: frozenset[str]
    min_duration: float | None = None


@dataclass(frozen=True, slots=True)
class LogConfig:
    rules: tuple[Rule, ...]


def parse(d: Directive, block: BlockInfo) -> LogConfig:
    args = [t for t in d.args]
    fmt = COMMON
    if len(args) >= 2 and "{" in args[-1].text:
        last = args.pop().text
        fmt = {"{common}": COMMON, "{combined}": COMBINED}.get(last, last)
    scopes: list[str] = []
    for tok in args:
        scopes.extend(parsing.zone(tok))
    classes: set[str] = set()
    min_duration: float | None = None
    for sub in d.block or ():
        if sub.name == "class":
            if not sub.args:
                raise sub.error("class needs at least one of: success, denial, error, all")
            for tok in sub.args:
                if tok.text not in CLASSES:
                    raise tok.error(
                        f"invalid log class {tok.text!r} (expected success, denial, error or all)"
                    )
                classes.add(tok.text)
        elif sub.name == "minDuration":
            parsing.arg_count(sub, 1, 1, "minDuration DURATION")
            min_duration = parsing.duration(sub.args[0])
        else:
            raise parsing.unknown_property("log", sub, ("class", "minDuration"))
    if not classes:
        classes.add("all")
    frozen = frozenset(classes)
    rules = tuple(Rule(s, fmt, frozen, min_duration) for s in scopes or ["."])
    return LogConfig(rules)


@dataclass(slots=True)
class _Entry:
    request: Request
    reply: Reply
    out: bytes
    seconds: float


def _duration(seconds: float) -> str:
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _remote(e: _Entry) -> str:
    return bracket(e.request.client)


def _rflags(e: _Entry) -> str:
    flags = int.from_bytes(e.out[2:4], "big") if len(e.out) >= 4 else 0
    return ",".join(n for n, bit in _FLAG_BITS if flags & bit) or "-"


_FIELDS: dict[str, Callable[[_Entry], str]] = {
    "{type}": lambda e: type_name(e.request.qtype),
    "{name}": lambda e: e.request.name,
    "{class}": lambda e: "IN" if e.request.qclass == 1 else f"CLASS{e.request.qclass}",
    "{proto}": lambda e: e.request.proto,
    "{remote}": _remote,
    "{local}": lambda e: "-",
    "{size}": lambda e: str(e.request.size),
    "{port}": lambda e: str(e.request.port),
    "{duration}": lambda e: _duration(e.seconds),
    "{rcode}": lambda e: rcode_name(e.reply.rcode),
    "{rsize}": lambda e: str(len(e.out)),
    "{>rflags}": _rflags,
    "{>bufsize}": lambda e: str(e.request.max_size),
    "{>do}": lambda e: "true" if e.request.do else "false",
    "{>id}": lambda e: str(e.request.id),
    "{>opcode}": lambda e: "QUERY",
}


def compile_format(fmt: str) -> Callable[[_Entry], str]:
    """Split the format once; each query then only runs the placeholders it names."""
    parts: list[str | Callable[[_Entry], str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(fmt):
        if m.start() > pos:
            parts.append(fmt[pos : m.start()])
        key = m.group(0)
        if key in _FIELDS:
            parts.append(_FIELDS[key])
        elif key.startswith("{/"):
            parts.append("-")  # metadata labels: kdns has no metadata plugin
        else:
            parts.append(key)
        pos = m.end()
    if pos < len(fmt):
        parts.append(fmt[pos:])

    def render(e: _Entry) -> str:
        return "".join(p if isinstance(p, str) else p(e) for p in parts)

    return render


class LogPlugin:
    name = "log"

    def __init__(self, config: LogConfig) -> None:
        self.rules = [(r, compile_format(r.format)) for r in config.rules]

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        for rule, render in self.rules:
            if rule.scope != "." and not names.is_subdomain(request.name, rule.scope):
                continue
            memo.deny()  # each query of a logged name gets its line: no replay from bytes
            start = time.perf_counter()
            reply = await call_next(request)
            seconds = time.perf_counter() - start
            cls = classify(reply)
            slow = rule.min_duration is not None and seconds > rule.min_duration
            if "all" in rule.classes or cls in rule.classes or slow:
                out = wire.encode(request, reply)
                log.info("%s", render(_Entry(request, reply, out, seconds)))
            return reply
        return await call_next(request)


def build(config: LogConfig, ctx: BuildContext) -> LogPlugin:
    return LogPlugin(config)


def merge(first: LogConfig, later: LogConfig) -> LogConfig:
    """Several `log` lines in one block: one plugin, the first matching rule logs (CoreDNS)."""
    return LogConfig(first.rules + later.rules)


SPEC = PluginSpec("log", parse, build, repeatable=True, merge=merge)

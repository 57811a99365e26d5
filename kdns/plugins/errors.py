"""`errors [{ consolidate DURATION REGEXP [LEVEL] [show_first]; stacktrace }]`: log failures.

Every SERVFAIL a plugin produces, and every unexpected exception, is logged as CoreDNS does:
`[ERROR] plugin/errors: 2 NAME. TYPE: reason`. `consolidate` folds repeats of matching messages
into one line per period, so an upstream outage does not flood the log.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.dns.message import SERVFAIL, Reply, Request, rcode_name
from kdns.dns.records import type_name
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

log = logging.getLogger("kdns.errors")
_LEVELS = {
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


@dataclass(frozen=True, slots=True)
class Consolidate:
    period: float
    pattern: re.Pattern[str]
    level: int
    show_first: bool


@dataclass(frozen=True, slots=True)
class ErrorsConfig:
    consolidate: tuple[Consolidate, ...] = ()
    stacktrace: bool = False


def parse(d: Directive, block: BlockInfo) -> ErrorsConfig:
    parsing.no_args(d)
    rules = []
    stacktrace = False
    for sub in d.block or ():
        if sub.name == "consolidate":
            parsing.arg_count(sub, 2, 4, "consolidate DURATION REGEXP [LEVEL] [show_first]")
            period = parsing.duration(sub.args[0])
            try:
                pattern = re.compile(sub.args[1].text)
            except re.error as exc:
                raise sub.args[1].error(f"invalid regular expression: {exc}") from None
            level = logging.ERROR
            show_first = False
            for tok in sub.args[2:]:
                if tok.text == "show_first":
                    show_first = True
                elif tok.text in _LEVELS:
                    level = _LEVELS[tok.text]
                else:
                    raise tok.error(
                        f"expected a level (warning, error, info, debug) or "
                        f"show_first, got {tok.text!r}"
                    )
            rules.append(Consolidate(period, pattern, level, show_first))
        elif sub.name == "stacktrace":
            parsing.no_args(sub)
            stacktrace = True
        else:
            raise parsing.unknown_property("errors", sub, ("consolidate", "stacktrace"))
    return ErrorsConfig(tuple(rules), stacktrace)


class ErrorsPlugin:
    name = "errors"

    def __init__(self, config: ErrorsConfig) -> None:
        self.config = config
        self._counts: dict[int, int] = {}
        self._window_start: dict[int, float] = {}

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        reply = await call_next(request)
        if reply.rcode == SERVFAIL and reply.error:
            self.report(request, reply.error)
        return reply

    def report(self, request: Request, message: str) -> None:
        line = f"{SERVFAIL} {request.qname} {type_name(request.qtype)}: {message}"
        for i, rule in enumerate(self.config.consolidate):
            if rule.pattern.search(line):
                now = time.monotonic()
                start = self._window_start.get(i)
                if start is None or now - start >= rule.period:
                    if start is not None and self._counts.get(i, 0):
                        log.log(
                            rule.level,
                            "%d errors like '%s' occurred in last %s",
                            self._counts[i],
                            rule.pattern.pattern,
                            f"{rule.period:g}s",
                        )
                    self._window_start[i] = now
                    self._counts[i] = 0
                    if rule.show_first:
                        log.log(rule.level, "plugin/errors: %s", line)
                        return
                self._counts[i] = self._counts.get(i, 0) + 1
                return
        log.error("plugin/errors: %s (%s)", line, rcode_name(SERVFAIL))


def build(config: ErrorsConfig, ctx: BuildContext) -> ErrorsPlugin:
    return ErrorsPlugin(config)


SPEC = PluginSpec("errors", parse, build)

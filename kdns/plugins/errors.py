"""`errors [{ consolidate DURATION REGEXP [LEVEL] [show_first]; stacktrace }]`: log failures.

Every SERVFAIL a plugin produces, and every unexpected exception, is logged as CoreDNS does:
`[ERROR] plugin/errors: 2 NAME. TYPE: reason`. `consolidate` folds repeats of matching messages
into one line per period, so an upstream outage does not flood the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.dns.message import Reply, Request
from kdns.dns.records import type_name
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec, Service

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
    # `errors stdout` is CoreDNS's historical spelling of the default: errors go to the log.
    if [t.text for t in d.args] != ["stdout"]:
        parsing.no_args(d)
    rules = []
    stacktrace = False
    for sub in d.block or ():
        if sub.name == "consolidate":
            parsing.arg_count(sub, 2, 4, "consolidate DURATION REGEXP [LEVEL] [show_first]")
            period = parsing.duration(sub.args[0])
            if len(sub.args[1].text) > 10000:
                raise sub.args[1].error("consolidate REGEXP must not exceed 10000 characters")
            try:
                pattern = re.compile(sub.args[1].text)
            except re.error as exc:
                raise sub.args[1].error(f"invalid regular expression: {exc}") from None
            level = logging.ERROR
            show_first = False
            rest = list(sub.args[2:])
            # CoreDNS's order: an optional LEVEL, then an optional show_first, nothing else.
            if rest and rest[0].text in _LEVELS:
                level = _LEVELS[rest.pop(0).text]
            if rest and rest[0].text == "show_first":
                show_first = True
                rest.pop(0)
            if rest:
                raise rest[0].error(
                    f"expected [LEVEL] [show_first] (LEVEL: warning, error, info, debug), "
                    f"got {rest[0].text!r}"
                )
            rules.append(Consolidate(period, pattern, level, show_first))
        elif sub.name == "stacktrace":
            parsing.no_args(sub)
            stacktrace = True
        else:
            raise parsing.unknown_property("errors", sub, ("consolidate", "stacktrace"))
    return ErrorsConfig(tuple(rules), stacktrace)


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole-second periods: 30s, 5m0s, 1h0m0s."""
    total = int(seconds)
    if total != seconds or total < 1:
        return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


class ErrorsPlugin(Service):
    name = "errors"

    def __init__(self, config: ErrorsConfig) -> None:
        self.config = config
        self._counts = [0] * len(config.consolidate)
        self._timers: list[asyncio.TimerHandle | None] = [None] * len(config.consolidate)

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        reply = await call_next(request)
        if reply.error:
            self.report(request, reply.rcode, reply.error)
        return reply

    def report(self, request: Request, rcode: int, message: str) -> None:
        line = f"{rcode} {request.name} {type_name(request.qtype)}: {message}"
        for i, rule in enumerate(self.config.consolidate):
            if rule.pattern.search(message):
                self._counts[i] += 1
                if self._counts[i] == 1:
                    # The period starts with the first matching error, as CoreDNS's AfterFunc.
                    loop = asyncio.get_running_loop()
                    self._timers[i] = loop.call_later(rule.period, self._summarise, i)
                    if rule.show_first:
                        log.log(rule.level, "plugin/errors: %s", line)
                return
        log.error("plugin/errors: %s", line)

    def _summarise(self, i: int) -> None:
        rule = self.config.consolidate[i]
        count, self._counts[i] = self._counts[i], 0
        self._timers[i] = None
        if count > 1 or (count == 1 and not rule.show_first):
            log.log(
                rule.level,
                "plugin/errors: %d errors like '%s' occurred in last %s",
                count,
                rule.pattern.pattern,
                go_duration(rule.period),
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Flush what is pending so a reload or shutdown does not swallow counted errors.
            for i, timer in enumerate(self._timers):
                if timer is not None:
                    timer.cancel()
                    self._summarise(i)


def build(config: ErrorsConfig, ctx: BuildContext) -> ErrorsPlugin:
    return ErrorsPlugin(config)


SPEC = PluginSpec("errors", parse, build)

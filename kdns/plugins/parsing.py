"""Argument readers shared by the directive parsers: durations, numbers, zones, flags.

Each reader raises CorefileError pointing at the offending token, with what was expected.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from kdns.corefile import CorefileError, Directive, Token
from kdns.dns import names
from kdns.hostport import HostPort, split

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

_noted: set[str] = set()


def no_effect(log: logging.Logger, option: str, why: str) -> None:
    """Log once per process that `option`, accepted so CoreDNS's Corefiles load unchanged, does
    nothing in kdns, and why."""
    if option not in _noted:
        _noted.add(option)
        log.warning("%s has no effect in kdns (%s)", option, why)


def address(tok: Token) -> HostPort:
    """`[HOST]:PORT` as CoreDNS reads a listen address (`:8080`, `localhost:9153`, `[::1]:53`)."""
    try:
        host, port_text = split(tok.text)
    except ValueError as exc:
        raise tok.error(str(exc)) from None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise tok.error(f"invalid port {port_text!r} in address {tok.text!r}")
    return host, int(port_text)


def duration(tok: Token, *, minimum: float = 0.0) -> float:
    """Go-style duration (`5s`, `1m30s`, `250ms`) in seconds."""
    text = tok.text
    # Go's time.ParseDuration takes a bare 0, and only 0, without a unit.
    pos = len(text) if text == "0" else 0
    total = 0.0
    for m in _DURATION.finditer(text if pos == 0 else ""):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        if text.isdigit():
            raise tok.error(f"duration {text!r} needs a unit, e.g. {text}s")
        raise tok.error(f"invalid duration {text!r} (expected e.g. 5s, 1m30s, 500ms)")
    if total < minimum:
        raise tok.error(f"duration {text} is below the minimum of {minimum:g}s")
    return total


def integer(tok: Token, lo: int, hi: int, what: str) -> int:
    try:
        value = int(tok.text)
    except ValueError:
        raise tok.error(f"{what} must be a whole number, got {tok.text!r}") from None
    if not lo <= value <= hi:
        raise tok.error(f"{what} must be between {lo} and {hi}, got {value}")
    return value


def zone(tok: Token) -> list[str]:
    """A zone argument: a domain, or a CIDR that expands to reverse zones."""
    text = tok.text
    if "/" in text:
        try:
            return names.reverse_zone_of_cidr(text)
        except ValueError:
            raise tok.error(f"invalid CIDR zone {text!r}") from None
    if not text or (".." in text.strip(".") + "." and text != "."):
        raise tok.error(f"invalid zone {text!r}")
    if any(len(label) > 63 for label in text.split(".")) or len(text.rstrip(".")) > 253:
        raise tok.error(f"invalid zone {text!r}: a label is at most 63 octets, a name 253")
    return [names.normalize(text)]


def zones(tokens: tuple[Token, ...] | list[Token], default: tuple[str, ...]) -> tuple[str, ...]:
    if not tokens:
        return default
    out: list[str] = []
    for tok in tokens:
        for z in zone(tok):
            if z not in out:
                out.append(z)
    return tuple(out)


def falls_through(fallthrough: tuple[str, ...] | None, name: str) -> bool:
    """Whether a `fallthrough [ZONES]` setting (None: not given; (): every zone) passes `name`
    on to the next plugin."""
    return fallthrough is not None and (
        not fallthrough or names.longest_zone(name, fallthrough) is not None
    )


def no_args(d: Directive) -> None:
    if d.args:
        raise d.args[0].error(f"{d.name} takes no arguments, got {d.args[0].text!r}")


def no_block(d: Directive) -> None:
    if d.block:
        raise d.block[0].error(f"{d.name} takes no block, found {d.block[0].name!r}")


def arg_count(d: Directive, lo: int, hi: int, usage: str) -> None:
    n = len(d.args)
    if n < lo or n > hi:
        where = d.args[hi] if n > hi else d
        raise where.error(f"wrong number of arguments for {d.name}: usage: {usage}")


def unknown_property(plugin: str, sub: Directive, known: tuple[str, ...]) -> CorefileError:
    return sub.error(
        f"unknown property {sub.name!r} for {plugin} (expected one of: {', '.join(known)})"
    )


def ip_address(tok: Token) -> str:
    try:
        return str(ipaddress.ip_address(tok.text))
    except ValueError:
        raise tok.error(f"invalid IP address {tok.text!r}") from None

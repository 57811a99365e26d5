"""`bind ADDRESS... [{ except ADDRESS... }]`: the addresses a server block listens on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec


@dataclass(frozen=True, slots=True)
class BindConfig:
    addresses: tuple[str, ...]
    excluded: tuple[str, ...] = ()


def parse(d: Directive, block: BlockInfo) -> BindConfig:
    if not d.args:
        raise d.error("bind needs at least one address: usage: bind ADDRESS...")
    addrs = []
    for tok in d.args:
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.@-]*", tok.text):
            raise tok.error(
                f"binding to an interface ({tok.text!r}) is not supported yet; give an IP address"
            )
        addrs.append(parsing.ip_address(tok))
    excluded: list[str] = []
    for sub in d.block or ():
        if sub.name != "except":
            raise parsing.unknown_property("bind", sub, ("except",))
        excluded.extend(parsing.ip_address(t) for t in sub.args)
    return BindConfig(tuple(addrs), tuple(excluded))


def addresses(configs: Sequence[BindConfig]) -> tuple[str, ...]:
    """What a block with these `bind` directives listens on: "" (every address) without one."""
    if not configs:
        return ("",)
    addrs: list[str] = []
    for config in configs:
        for a in config.addresses:
            if a not in config.excluded and a not in addrs:
                addrs.append(a)
    return tuple(addrs)


SPEC = PluginSpec("bind", parse, None, repeatable=True)

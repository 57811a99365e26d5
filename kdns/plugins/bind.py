"""`bind ADDRESS|IFACE... [{ except ADDRESS|IFACE... }]`: the addresses a server block listens on.

An interface name (`lo`, `eth0`) stands for every address the interface has when the Corefile is
read (CoreDNS does the same): `bind lo` listens on 127.0.0.1 and ::1. A name no interface has is
an error at that line; addresses added to an interface later need a reload.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kdns.corefile import Directive, Token
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec
from kdns.transport import interfaces


@dataclass(frozen=True, slots=True)
class BindConfig:
    addresses: tuple[str, ...]
    excluded: tuple[str, ...] = ()


def _resolve(tok: Token) -> list[str]:
    """An address as it is, or an interface's addresses."""
    try:
        ipaddress.ip_address(tok.text)
    except ValueError:
        found = interfaces.addresses(tok.text)
        if found is not None:
            return found
        if any(c in tok.text for c in ".:"):
            return [parsing.ip_address(tok)]  # says why the address is not one
        known = ", ".join(sorted(interfaces.names()))
        raise tok.error(
            f"{tok.text!r} is neither an IP address nor an interface of this host ({known})"
        ) from None
    return [parsing.ip_address(tok)]


def parse(d: Directive, block: BlockInfo) -> BindConfig:
    if not d.args:
        raise d.error("bind needs at least one address: usage: bind ADDRESS|IFACE...")
    addrs: list[str] = []
    for tok in d.args:
        addrs.extend(a for a in _resolve(tok) if a not in addrs)
    excluded: list[str] = []
    for sub in d.block or ():
        if sub.name != "except":
            raise parsing.unknown_property("bind", sub, ("except",))
        for tok in sub.args:
            excluded.extend(_resolve(tok))
    if not [a for a in addrs if a not in excluded]:
        raise d.error("bind: no address is left to listen on once the excepted ones are taken out")
    return BindConfig(tuple(addrs), tuple(excluded))


SPEC = PluginSpec("bind", parse, None, repeatable=True)

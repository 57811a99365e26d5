"""`ready [ADDRESS] { monitor until-ready|continuously }`: the readiness endpoint, `/ready`.

200 "OK" once every plugin of the blocks that enable `ready` reports ready (kubernetes: after
its first sync with the API), otherwise 503 with the comma-separated names of those that are not;
503 "Shutting down" once shutdown (lameduck) has begun. Default address `:8181`. With the default
`monitor until-ready` a plugin that was ready once is not asked again, as in CoreDNS.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec
from kdns.server.http import HostPort, parse_address

DEFAULT_ADDRESS: HostPort = ("", 8181)


@dataclass(frozen=True, slots=True)
class ReadyConfig:
    address: HostPort = DEFAULT_ADDRESS
    continuously: bool = False


def parse(d: Directive, block: BlockInfo) -> ReadyConfig:
    parsing.arg_count(d, 0, 1, "ready [ADDRESS]")
    address = parse_address(d.args[0]) if d.args else DEFAULT_ADDRESS
    continuously = False
    for sub in d.block or ():
        if sub.name != "monitor":
            raise parsing.unknown_property("ready", sub, ("monitor",))
        parsing.arg_count(sub, 1, 1, "monitor until-ready|continuously")
        mode = sub.args[0].text
        if mode not in ("until-ready", "continuously"):
            raise sub.args[0].error(
                f"monitor type {mode!r} not supported (expected until-ready or continuously)"
            )
        continuously = mode == "continuously"
    return ReadyConfig(address, continuously)


SPEC = PluginSpec("ready", parse, None)

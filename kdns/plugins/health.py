"""`health [ADDRESS] { lameduck DURATION }`: the liveness endpoint, `/health` answering 200 "OK".

Server-level and process-wide as in CoreDNS: every block that names the same address shares one
listener (default `:8080`). `lameduck` delays shutdown: on SIGTERM the server keeps answering DNS
(and /health) for DURATION so clients and kube-proxy move away before the sockets close.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec
from kdns.server.http import HostPort, parse_address

DEFAULT_ADDRESS: HostPort = ("", 8080)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    address: HostPort = DEFAULT_ADDRESS
    lameduck: float = 0.0


def parse(d: Directive, block: BlockInfo) -> HealthConfig:
    parsing.arg_count(d, 0, 1, "health [ADDRESS] { lameduck DURATION }")
    address = parse_address(d.args[0]) if d.args else DEFAULT_ADDRESS
    lameduck = 0.0
    for sub in d.block or ():
        if sub.name != "lameduck":
            raise parsing.unknown_property("health", sub, ("lameduck",))
        parsing.arg_count(sub, 1, 1, "lameduck DURATION")
        lameduck = parsing.duration(sub.args[0])
    return HealthConfig(address, lameduck)


SPEC = PluginSpec("health", parse, None)

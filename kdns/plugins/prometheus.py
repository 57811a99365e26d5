"""`prometheus [ADDRESS]`: serve metrics at `/metrics` (default `localhost:9153`).

Server-level: the blocks that carry this directive have their queries counted in the
`coredns_dns_*` families (see kdns.server.recorder); every plugin's own families live on the
same injected registry. One listener per address, however many blocks name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec
from kdns.server.http import HostPort, parse_address

DEFAULT_ADDRESS: HostPort = ("localhost", 9153)


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    address: HostPort = DEFAULT_ADDRESS


def parse(d: Directive, block: BlockInfo) -> PrometheusConfig:
    parsing.arg_count(d, 0, 1, "prometheus [ADDRESS]")
    parsing.no_block(d)
    return PrometheusConfig(parse_address(d.args[0]) if d.args else DEFAULT_ADDRESS)


SPEC = PluginSpec("prometheus", parse, None)

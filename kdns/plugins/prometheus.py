"""`prometheus [ADDRESS] [{ runtime_metrics }]`: serve metrics at `/metrics` (default
`localhost:9153`). `runtime_metrics` adds Go runtime families in CoreDNS; kdns has no Go runtime
(it always exports its process_* families), so the option is accepted and logged as having no
effect.

Server-level: the blocks that carry this directive have their queries counted in the
`coredns_dns_*` families (see kdns.server.recorder); every plugin's own families live on the
same injected registry. One listener per address, however many blocks name it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec
from kdns.server.http import HostPort, parse_address

DEFAULT_ADDRESS: HostPort = ("localhost", 9153)
log = logging.getLogger("kdns.prometheus")
_noted: set[str] = set()


def no_effect(option: str) -> None:
    """Log once per process that a Go-runtime option does nothing in kdns."""
    if option not in _noted:
        _noted.add(option)
        log.warning("%s has no effect in kdns (a Go runtime option of CoreDNS)", option)


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    address: HostPort = DEFAULT_ADDRESS


def parse(d: Directive, block: BlockInfo) -> PrometheusConfig:
    parsing.arg_count(d, 0, 1, "prometheus [ADDRESS]")
    for sub in d.block or ():
        if sub.name != "runtime_metrics":
            raise parsing.unknown_property("prometheus", sub, ("runtime_metrics",))
        parsing.no_args(sub)
        parsing.no_block(sub)
        no_effect("prometheus runtime_metrics")
    return PrometheusConfig(parse_address(d.args[0]) if d.args else DEFAULT_ADDRESS)


SPEC = PluginSpec("prometheus", parse, None)

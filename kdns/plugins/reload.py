"""`reload [INTERVAL [JITTER]]`: pick up an edited Corefile without a restart.

Every INTERVAL (default 30s, at least 2s) plus or minus half of JITTER (default 15s, at least 1s,
0 for none, at most INTERVAL/2) the Corefile's SHA512 is compared with the running one; a change
is loaded and swapped in under the same sockets (kdns.server.ops). A broken file keeps the old
configuration serving, is logged with file:line and counted in `coredns_reload_failed_total`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec

DEFAULT_INTERVAL = 30.0
DEFAULT_JITTER = 15.0
MIN_INTERVAL = 2.0
MIN_JITTER = 1.0


@dataclass(frozen=True, slots=True)
class ReloadConfig:
    interval: float = DEFAULT_INTERVAL
    jitter: float = DEFAULT_JITTER


def parse(d: Directive, block: BlockInfo) -> ReloadConfig:
    parsing.arg_count(d, 0, 2, "reload [INTERVAL [JITTER]]")
    parsing.no_block(d)
    interval = DEFAULT_INTERVAL
    jitter = DEFAULT_JITTER
    if d.args:
        interval = parsing.duration(d.args[0], minimum=MIN_INTERVAL)
    if len(d.args) > 1:
        jitter = parsing.duration(d.args[1])
        if 0 < jitter < MIN_JITTER:  # 0 turns the jitter off, as in CoreDNS
            raise d.args[1].error(f"jitter {d.args[1].text} is below the minimum of 1s")
    return ReloadConfig(interval, min(jitter, interval / 2))


SPEC = PluginSpec("reload", parse, None)

"""`prometheus [ADDRESS] [{ runtime_metrics }]`: serve metrics at `/metrics` (default
`localhost:9153`). `runtime_metrics` adds Go runtime families in CoreDNS; kdns has no Go runtime
(it always exports its process_* families), so the option is accepted and logged as having no
effect.

Server-level: the blocks that carry this directive have their queries counted in the
`coredns_dns_*` families (see kdns.server.recorder); every plugin's own families live on the
same injected registry. One listener per address, however many blocks name it.
"""

from __future__ import annotations

import contextlib
import logging
import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kdns import __version__, metrics
from kdns.corefile import Directive
from kdns.hostport import HostPort
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec
from kdns.transport.http import HttpHandler

DEFAULT_ADDRESS: HostPort = ("localhost", 9153)
log = logging.getLogger("kdns.prometheus")


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
        parsing.no_effect(log, "prometheus runtime_metrics", "a Go runtime option of CoreDNS")
    return PrometheusConfig(parsing.address(d.args[0]) if d.args else DEFAULT_ADDRESS)


SPEC = PluginSpec("prometheus", parse, None)


# One block that enables prometheus, as `coredns_plugin_enabled` reports it.
EnabledBlock = tuple[str, Sequence[str], Iterable[str]]  # server label, zones, plugin names


class _PluginEnabled(Collector):
    """`coredns_plugin_enabled{server,zone,view,name}` for the blocks that enable prometheus."""

    def __init__(self, blocks: Callable[[], Iterable[EnabledBlock]]) -> None:
        self._blocks = blocks

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "coredns_plugin_enabled",
            "A metric that indicates whether a plugin is enabled on per server and zone basis.",
            labels=("server", "zone", "view", "name"),
        )
        for server, zones, built in self._blocks():
            names = sorted({*built, "prometheus"})
            for zone in zones:
                for name in names:
                    fam.add_metric([server, zone, "", name], 1)
        yield fam


class Exposition:
    """The process-wide part of `prometheus`: the /metrics handler over `registry`, and the
    families CoreDNS exports besides the per-query ones (build info, process, plugins enabled).
    `blocks()` gives the running configuration's blocks that enable prometheus."""

    def __init__(
        self, registry: CollectorRegistry, blocks: Callable[[], Iterable[EnabledBlock]]
    ) -> None:
        registry.register(_PluginEnabled(blocks))
        with contextlib.suppress(ValueError):  # already there if the registry is shared
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        metrics.gauge(
            registry,
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion "
            "from which CoreDNS was built.",
            ("version", "revision", "goversion"),
        ).labels(__version__, "", f"python{platform.python_version()}").set(1)
        self.handle: HttpHandler = make_aiohttp_handler(registry)

"""The directives kdns understands, in chain order (kdns's plugin.cfg).

The order of `SPECS`, not the order of lines in a Corefile, decides the order in which query
plugins see a request, as in CoreDNS. One line per directive: a new directive is one import and
one line in the table, at its place in the chain.
"""

from __future__ import annotations

from kdns.plugins import (
    autopath,
    bind,
    cache,
    errors,
    forward,
    health,
    hosts,
    kubernetes,
    loadbalance,
    log,
    loop,
    prometheus,
    ready,
    reload,
)
from kdns.plugins.base import PluginSpec

# Chain order for query plugins follows this sequence.
SPECS: tuple[PluginSpec, ...] = (
    bind.SPEC,
    reload.SPEC,
    ready.SPEC,
    health.SPEC,
    prometheus.SPEC,
    errors.SPEC,
    log.SPEC,
    loadbalance.SPEC,
    cache.SPEC,
    autopath.SPEC,
    hosts.SPEC,
    kubernetes.SPEC,
    loop.SPEC,
    forward.SPEC,
)

# CoreDNS plugins that kdns does not implement (yet): refused with a clear message.
COREDNS_PLUGINS = frozenset(
    [
        "acl",
        "any",
        "auto",
        "azure",
        "bufsize",
        "cancel",
        "chaos",
        "clouddns",
        "debug",
        "dns64",
        "dnssec",
        "dnstap",
        "erratic",
        "etcd",
        "file",
        "geoip",
        "grpc",
        "grpc_server",
        "header",
        "https",
        "https3",
        "k8s_external",
        "local",
        "metadata",
        "minimal",
        "multisocket",
        "nsid",
        "on",
        "pprof",
        "quic",
        "rewrite",
        "root",
        "route53",
        "secondary",
        "sign",
        "template",
        "timeouts",
        "tls",
        "trace",
        "transfer",
        "tsig",
        "view",
        "whoami",
    ]
)

_BY_NAME = {s.name: s for s in SPECS}
_POSITION = {s.name: i for i, s in enumerate(SPECS)}


def spec(name: str) -> PluginSpec | None:
    """The spec for `name`, or None if kdns has no such directive (yet)."""
    return _BY_NAME.get(name)


def position(name: str) -> int:
    return _POSITION.get(name, len(SPECS))


def known_directive(name: str) -> bool:
    return name in _BY_NAME or name in COREDNS_PLUGINS

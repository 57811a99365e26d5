"""The directives kdns understands, in chain order (kdns's plugin.cfg).

The order of `SPECS`, not the order of lines in a Corefile, decides the order in which query
plugins see a request, as in CoreDNS. One line per directive: a new directive is one import and
one line in the table, at its place in the chain. `PLUGIN_CFG` is CoreDNS's own plugin.cfg
order (v1.14); `SPECS` follows it, which a test checks.
"""

from __future__ import annotations

from kdns.plugins import (
    acl,
    autopath,
    bind,
    bufsize,
    cache,
    chaos,
    dns64,
    errors,
    file,
    forward,
    health,
    hosts,
    k8s_external,
    kubernetes,
    loadbalance,
    local,
    log,
    loop,
    minimal,
    nsid,
    ocp_dnsnameresolver,
    prometheus,
    ready,
    reload,
    rewrite,
    template,
    tls,
    transfer,
    whoami,
)
from kdns.plugins import any as any_class
from kdns.plugins.base import PluginSpec

# Chain order for query plugins follows this sequence.
SPECS: tuple[PluginSpec, ...] = (
    tls.SPEC,
    reload.SPEC,
    nsid.SPEC,
    bufsize.SPEC,
    bind.SPEC,
    ready.SPEC,
    health.SPEC,
    prometheus.SPEC,
    errors.SPEC,
    log.SPEC,
    local.SPEC,
    dns64.SPEC,
    acl.SPEC,
    any_class.SPEC,
    chaos.SPEC,
    loadbalance.SPEC,
    cache.SPEC,
    rewrite.SPEC,
    autopath.SPEC,
    minimal.SPEC,
    template.SPEC,
    transfer.SPEC,
    hosts.SPEC,
    k8s_external.SPEC,
    kubernetes.SPEC,
    file.SPEC,
    loop.SPEC,
    forward.SPEC,
    whoami.SPEC,
    ocp_dnsnameresolver.SPEC,  # OpenShift's external plugin; accepted, does nothing here
)

# CoreDNS's plugin.cfg (v1.14), in its order: the directives CoreDNS knows. Those kdns does not
# implement (yet) are refused with a clear message.
PLUGIN_CFG: tuple[str, ...] = (
    "root",
    "metadata",
    "geoip",
    "cancel",
    "tls",
    "quic",
    "timeouts",
    "multisocket",
    "reload",
    "nsid",
    "bufsize",
    "bind",
    "debug",
    "trace",
    "ready",
    "health",
    "pprof",
    "prometheus",
    "errors",
    "log",
    "dnstap",
    "local",
    "dns64",
    "acl",
    "any",
    "chaos",
    "loadbalance",
    "tsig",
    "cache",
    "rewrite",
    "header",
    "dnssec",
    "autopath",
    "minimal",
    "template",
    "transfer",
    "hosts",
    "route53",
    "azure",
    "clouddns",
    "k8s_external",
    "kubernetes",
    "file",
    "auto",
    "secondary",
    "etcd",
    "loop",
    "forward",
    "grpc",
    "erratic",
    "whoami",
    "on",
    "sign",
    "view",
)

# CoreDNS plugins outside plugin.cfg's query order (server types kdns does not serve).
COREDNS_PLUGINS = frozenset([*PLUGIN_CFG, "https", "https3", "grpc_server"])

# Directives CoreDNS removed: refused, naming what replaced them.
REMOVED = {
    "proxy": 'the proxy plugin was removed in CoreDNS 1.7; use "forward" '
    "(e.g. forward . /etc/resolv.conf)",
    "federation": "the federation plugin was removed in CoreDNS 1.7 (Kubernetes federation v1 "
    'is gone); serve those names with "forward" to the other cluster, or "rewrite"',
    "upstream": 'the upstream directive was removed; use "forward"',
}

_BY_NAME = {s.name: s for s in SPECS}
_POSITION = {s.name: i for i, s in enumerate(SPECS)}


def spec(name: str) -> PluginSpec | None:
    """The spec for `name`, or None if kdns has no such directive (yet)."""
    return _BY_NAME.get(name)


def position(name: str) -> int:
    return _POSITION.get(name, len(SPECS))


def known_directive(name: str) -> bool:
    return name in _BY_NAME or name in COREDNS_PLUGINS


def unknown_message(name: str) -> str:
    if name in REMOVED:
        return f'unknown directive "{name}": {REMOVED[name]}'
    return f'unknown directive "{name}"'

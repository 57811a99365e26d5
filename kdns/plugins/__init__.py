"""The directives kdns understands, in chain order (kdns's plugin.cfg).

The order of this tuple, not the order of lines in a Corefile, decides the order in which
query plugins see a request, as in CoreDNS. Each entry names the module holding its `SPEC`.
"""

from __future__ import annotations

import importlib

from kdns.plugins.base import PluginSpec

# name -> module; chain order for query plugins follows this sequence.
ORDER: tuple[tuple[str, str], ...] = (
    ("bind", "kdns.plugins.bind"),
    ("reload", "kdns.plugins.reload"),
    ("ready", "kdns.plugins.ready"),
    ("health", "kdns.plugins.health"),
    ("prometheus", "kdns.plugins.prometheus"),
    ("errors", "kdns.plugins.errors"),
    ("log", "kdns.plugins.log"),
    ("loadbalance", "kdns.plugins.loadbalance"),
    ("cache", "kdns.plugins.cache"),
    ("autopath", "kdns.plugins.autopath"),
    ("kubernetes", "kdns.plugins.kubernetes"),
    ("loop", "kdns.plugins.loop"),
    ("forward", "kdns.plugins.forward"),
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
        "hosts",
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

_SPECS: dict[str, PluginSpec] = {}


def spec(name: str) -> PluginSpec | None:
    """The spec for `name`, or None if kdns has no such directive (yet)."""
    if name in _SPECS:
        return _SPECS[name]
    module = dict(ORDER).get(name)
    if module is None:
        return None
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None  # listed for ordering, not written yet
        raise
    found: PluginSpec = mod.SPEC
    _SPECS[name] = found
    return found


def position(name: str) -> int:
    for i, (n, _) in enumerate(ORDER):
        if n == name:
            return i
    return len(ORDER)


def known_directive(name: str) -> bool:
    return name in dict(ORDER) or name in COREDNS_PLUGINS

"""`ocp_dnsnameresolver { namespaces NS...; minTTL SECONDS; failureThreshold N }`: accepted, inert.

OpenShift's DNS operator adds this external CoreDNS plugin when its DNSNameResolver feature is
on: it watches DNSNameResolver resources and writes the addresses that names resolved to into
their status, for egress firewall rules. It never changes an answer. kdns reads and checks its
options so such a Corefile runs unchanged, but does not update DNSNameResolver resources; it
logs a warning saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec

log = logging.getLogger("kdns.plugins")
OPTIONS = ("namespaces", "minTTL", "failureThreshold")


@dataclass(frozen=True, slots=True)
class Config:
    namespaces: tuple[str, ...] = ()
    min_ttl: int = 5
    failure_threshold: int = 5


def parse(d: Directive, block: BlockInfo) -> Config:
    parsing.no_args(d)
    namespaces: tuple[str, ...] = ()
    min_ttl = failure_threshold = 5
    for sub in d.block or ():
        if sub.name == "namespaces":
            parsing.arg_count(sub, 1, 1 << 16, "namespaces NAMESPACE...")
            namespaces = tuple(sub.values)
        elif sub.name == "minTTL":
            parsing.arg_count(sub, 1, 1, "minTTL SECONDS")
            min_ttl = parsing.integer(sub.args[0], 1, 1 << 31, "minTTL")
        elif sub.name == "failureThreshold":
            parsing.arg_count(sub, 1, 1, "failureThreshold N")
            failure_threshold = parsing.integer(sub.args[0], 1, 1 << 31, "failureThreshold")
        else:
            raise parsing.unknown_property("ocp_dnsnameresolver", sub, OPTIONS)
    log.warning(
        "%s:%d: ocp_dnsnameresolver is accepted but inert: answers are unaffected, and "
        "DNSNameResolver resources are not updated by kdns",
        d.file,
        d.line,
    )
    return Config(namespaces, min_ttl, failure_threshold)


SPEC = PluginSpec("ocp_dnsnameresolver", parse)

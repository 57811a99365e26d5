"""Build one plugin from a Corefile snippet and ask it questions without a listener.

For behaviour that depends on time (timeouts, TTL countdown), tests build the real plugin with
shorter timeouts or an injected clock and call it directly with decoded requests.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from kdns.config import from_text
from kdns.dns import wire
from kdns.dns.message import Reply, Request
from kdns.dns.records import type_from_text
from kdns.plugins.base import BlockInfo, BuildContext, Handler


def parse_directive(text: str, name: str, zone: str = ".") -> Any:
    """The parsed config of directive `name` in a one-block Corefile `zone { text }`."""
    config = from_text(f"{zone}:1053 {{\n{text}\n}}\n", "Corefile")
    entry = config.blocks[0].get(name)
    assert entry is not None
    return entry.config


def context(registry: CollectorRegistry | None = None, lookup: Handler | None = None) -> Any:
    async def _no_lookup(request: Request) -> Reply:
        raise AssertionError("lookup not expected")

    return BuildContext(
        BlockInfo((".",), 1053, "Corefile", 1),
        "dns://:1053",
        registry or CollectorRegistry(),
        lookup or _no_lookup,
    )


def request(
    qname: str,
    qtype: str = "A",
    *,
    proto: str = "udp",
    client: str = "127.0.0.1",
    do: bool = False,
    cd: bool = False,
) -> Request:
    data = wire.encode_query(qname, type_from_text(qtype), 4242, do=do, cd=cd)
    decoded = wire.decode_query(data, proto, client, 5353)
    assert isinstance(decoded, Request)
    return decoded

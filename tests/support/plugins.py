"""Build one plugin from a Corefile snippet and ask it questions without a listener.

For behaviour that depends on time (timeouts, TTL countdown), tests build the real plugin with
shorter timeouts or an injected clock and call it directly with decoded requests.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from kdns.config import from_text
from kdns.dns import wire
from kdns.dns.message import NOERROR, Reply, Request
from kdns.dns.records import RR, a, type_from_text
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


class Recorder:
    """A next plugin that keeps each request it is asked and answers `rcode` with `answer`
    (default: an A record 127.0.0.1 for the name it was asked, as CoreDNS's test responder)."""

    def __init__(self, answer: tuple[RR, ...] | None = None, rcode: int = NOERROR) -> None:
        self.seen: list[Request] = []
        self.answer = answer
        self.rcode = rcode

    async def __call__(self, req: Request) -> Reply:
        self.seen.append(req)
        answer = self.answer if self.answer is not None else (a(req.qname, 300, "127.0.0.1"),)
        return Reply(self.rcode, answer, plugin="next")

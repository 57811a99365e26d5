"""`chaos [VERSION] [AUTHORS...]`: answer CH-class TXT queries about the server (CoreDNS's chaos).

`version.bind` and `version.server` give VERSION (default `kdns-<version>`), `authors.bind` one
TXT per author in random order, `hostname.bind` and `id.server` the host name. Any other CH
query, and every other class or type, goes to the next plugin. Strings are cut at 255 bytes.
"""

from __future__ import annotations

import platform
import random

from kdns import __version__
from kdns.corefile import Directive
from kdns.dns import records
from kdns.dns.message import NOERROR, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

DEFAULT_AUTHORS = ("kdns authors",)


def _trim(text: str) -> str:
    return text.encode()[:255].decode(errors="ignore")


def parse(d: Directive, block: BlockInfo) -> tuple[str, tuple[str, ...]]:
    parsing.no_block(d)
    values = d.values
    if not values:
        return _trim(f"kdns-{__version__}"), DEFAULT_AUTHORS
    if len(values) == 1:
        return _trim(values[0]), DEFAULT_AUTHORS
    return values[0], tuple(sorted({_trim(a) for a in values[1:]}))


def _hostname() -> str:
    # The node name is the host name gethostname() gives, without a socket import here.
    return _trim(platform.node() or "localhost")


class ChaosPlugin:
    name = "chaos"
    classes = frozenset({records.CLASS_CH})

    def __init__(self, version: str, authors: tuple[str, ...]) -> None:
        self.version = version
        self.authors = authors

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        if request.qclass != records.CLASS_CH or request.qtype != records.TXT:
            return await call_next(request)
        name = request.name
        if name == "authors.bind.":
            memo.deny()  # a new order on every query
            texts = random.sample(self.authors, len(self.authors))
        elif name in ("version.bind.", "version.server."):
            texts = [self.version]
        elif name in ("hostname.bind.", "id.server."):
            texts = [_hostname()]
        else:
            return await call_next(request)
        replay = memo.get()
        if replay is not None:
            replay.allow()
        answer = tuple(
            records.RR(request.qname, records.TXT, 0, records.txt("", 0, t).rdata, records.CLASS_CH)
            for t in texts
        )
        return Reply(NOERROR, answer, plugin=self.name)


def build(config: tuple[str, tuple[str, ...]], ctx: BuildContext) -> ChaosPlugin:
    return ChaosPlugin(*config)


SPEC = PluginSpec("chaos", parse, build)

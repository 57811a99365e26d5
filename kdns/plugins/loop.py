"""`loop`: detect a forwarding loop at start and stop the server, as CoreDNS does.

Once the server is live it sends `HINFO <random>.<random>.<zone>` to its own listener (the
block's first zone and address). If that exact question comes back through the chain more than
twice, a forwarder sends our queries back to us (typically `forward . /etc/resolv.conf` with
`nameserver 127.0.0.53` on the node): the server logs CoreDNS's message and exits non-zero, so
the pod crash-loops visibly instead of burning CPU on looping queries. Detection ends 2 s after
the first probe is answered, or after 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from kdns.corefile import Directive
from kdns.dns.message import Reply, Request
from kdns.dns.records import HINFO
from kdns.hostport import show
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec, Service, background
from kdns.transport import client

log = logging.getLogger("kdns.loop")

PROBE_DEADLINE = 30.0
PROBE_TIMEOUT = 2.0
RETRY_AFTER = 1.0
DISABLE_AFTER = 2.0


def parse(d: Directive, block: BlockInfo) -> str:
    parsing.no_args(d)
    parsing.no_block(d)
    return block.zones[0] if block.zones else "."


def probe_name(zone: str) -> str:
    rnd = random.SystemRandom()
    labels = f"{rnd.getrandbits(63)}.{rnd.getrandbits(63)}."
    return labels if zone == "." else labels + zone


class LoopPlugin(Service):
    name = "loop"

    def __init__(
        self,
        zone: str,
        target: tuple[str, int],
        fatal: Callable[[str], None],
        local: str,
        serving: asyncio.Event | None = None,
    ) -> None:
        self.zone = zone
        self.qname = probe_name(zone)
        self.target = target
        self.local = local  # how CoreDNS shows its listen address: ":53"
        self.fatal = fatal
        self.seen = 0
        self.disabled = False
        # The probe goes out once the server listens (CoreDNS's OnStartup runs after listen).
        self.serving = serving if serving is not None else asyncio.Event()

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        if request.qtype == HINFO and not self.disabled and request.name == self.qname:
            self.seen += 1
            if self.seen > 2:
                self.disabled = True
                self.fatal(
                    f"plugin/loop: Loop ({request.client}:{request.port} -> {self.local}) "
                    f'detected for zone "{self.zone}", see '
                    f'https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO {self.qname}"'
                )
        return await call_next(request)

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The self-probe runs while the context is open; leaving it ends detection."""
        return background(self._probe, "loop-probe")

    async def _probe(self) -> None:
        try:
            await self.serving.wait()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + PROBE_DEADLINE
            while loop.time() < deadline and not self.disabled:
                if await self._exchange():
                    await asyncio.sleep(DISABLE_AFTER)  # let a looping probe come round
                    break
                await asyncio.sleep(RETRY_AFTER)
        finally:
            self.disabled = True

    async def _exchange(self) -> bool:
        """Send one probe; True if a reply came back in time."""
        host, port = self.target
        try:
            await client.udp(host, port, client.Question(self.qname, HINFO), PROBE_TIMEOUT)
        except client.ExchangeError:
            return False
        return True


def build(zone: str, ctx: BuildContext) -> LoopPlugin:
    host = ctx.bind[0] if ctx.bind and ctx.bind[0] not in ("", "0.0.0.0", "::") else "127.0.0.1"
    if ctx.bind and ctx.bind[0] == "::":
        host = "::1"
    port = ctx.block.port
    shown = "" if not ctx.bind or ctx.bind[0] == "" else ctx.bind[0]
    return LoopPlugin(zone, (host, port), ctx.fatal, show(shown, port), ctx.serving)


SPEC = PluginSpec("loop", parse, build)

"""`whoami`: answer any query with the client's address and port (CoreDNS's whoami).

The answer section stays empty; the additional section holds the client's address as A or AAAA
and `_<proto>.<qname> SRV 0 0 <port> .`, all with TTL 0 and the query's class (IN
unless another plugin of the chain admits other classes). The reply is
authoritative. It depends on the client, so it is never re-served from stored bytes.
"""

from __future__ import annotations

import ipaddress
import struct

from kdns.corefile import Directive
from kdns.dns import records
from kdns.dns.message import NOERROR, Reply, Request
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec


def parse(d: Directive, block: BlockInfo) -> None:
    parsing.no_args(d)
    parsing.no_block(d)


class WhoamiPlugin:
    name = "whoami"

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        memo.deny()
        ip = ipaddress.ip_address(request.client.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        rtype = records.A if ip.version == 4 else records.AAAA
        address = records.RR(request.qname, rtype, 0, ip.packed, request.qclass)
        owner = (
            f"_{request.proto}.{request.qname}" if request.qname != "." else f"_{request.proto}."
        )
        srv = records.RR(
            owner,
            records.SRV,
            0,
            struct.pack("!HHH", 0, 0, request.port) + b"\x00",
            request.qclass,
        )
        return Reply(NOERROR, additional=(address, srv), aa=True, plugin=self.name)


def build(config: None, ctx: BuildContext) -> WhoamiPlugin:
    return WhoamiPlugin()


SPEC = PluginSpec("whoami", parse, build)

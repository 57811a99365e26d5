"""`rewrite edns0 local|nsid|subnet ACTION ...`: EDNS0 options set on the request.

ACTION is `set` (change a matching option or add one), `append` (add one unless it exists),
`replace` (change a matching one only) or `unset` (remove a matching one). An option with the
same code matches. A request without EDNS gets an OPT record (UDP size 4096) for the plugins
after rewrite; the reply to the client still follows the client's own EDNS. A trailing `revert`
keeps the option out of the reply. `local` data is text, hex after `0x`, or a variable:
{qname}, {qtype}, {client_ip}, {client_port}, {protocol}, {server_ip}, {server_port}.
Metadata labels ({plugin/label}) are accepted and, with no metadata plugin in kdns, are empty,
so their rule does nothing (CoreDNS's behaviour for an empty label).
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from dataclasses import dataclass, replace

from kdns.corefile import Token
from kdns.dns.message import OPT_NSID, Edns, EdnsOption, Request
from kdns.plugins import parsing
from kdns.plugins.rewrite.answers import (
    ResponseRule,
    strip_option,
)
from kdns.plugins.rewrite.rules import Applied

log = logging.getLogger("kdns.rewrite")

OPT_SUBNET = 8  # RFC 7871 client subnet
ACTIONS = ("set", "append", "replace", "unset")
VARIABLES = (
    "{qname}",
    "{qtype}",
    "{client_ip}",
    "{client_port}",
    "{protocol}",
    "{server_ip}",
    "{server_port}",
)
# Variables whose value differs between two clients asking the same question.
PER_CLIENT = frozenset(["{client_ip}", "{client_port}", "{protocol}"])
NEW_EDNS = Edns(4096)


@dataclass(frozen=True, slots=True)
class Site:
    """Where the server listens, for {server_ip} and {server_port}."""

    ip: str | None  # None: the block listens on several addresses, the local one is unknown
    port: int


@dataclass(frozen=True, slots=True)
class Edns0Rule:
    mode: str
    action: str
    code: int
    data: bytes = b""
    variable: str | None = None
    masks: tuple[int, int] | None = None  # subnet: IPv4 and IPv6 prefix lengths
    revert: bool = False
    site: Site = Site(None, 53)  # set when the plugin is built (where the block listens)

    @property
    def per_client(self) -> bool:
        return self.masks is not None or self.variable in PER_CLIENT

    def value(self, request: Request, existing: bytes | None) -> bytes | None:
        if self.masks is not None:
            return _subnet(request.client, self.masks, existing)
        if self.variable is None:
            return self.data
        return _variable(self.variable, request, self.site)

    def apply(self, request: Request) -> Applied | None:
        edns = request.edns
        options = list(edns.options) if edns is not None else []
        at = next((i for i, (code, _) in enumerate(options) if code == self.code), None)
        if self.action == "unset":
            if at is None:
                return None
            del options[at]
        elif at is None and self.action in ("set", "append"):
            data = self.value(request, None)
            if data is None:
                return None
            options.append((self.code, data))
        elif at is not None and self.action in ("set", "replace"):
            data = self.value(request, options[at][1])
            if data is None:
                return None
            options[at] = (self.code, data)
        else:
            return None
        new: tuple[EdnsOption, ...] = tuple(options)
        out = replace(edns or NEW_EDNS, options=new)
        undo: tuple[ResponseRule, ...] = (strip_option(self.code),) if self.revert else ()
        return replace(request, edns=out), undo


def _subnet(client: str, masks: tuple[int, int], existing: bytes | None) -> bytes | None:
    """The client's address cut to the rule's prefix (or the query's own, if shorter)."""
    try:
        ip = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return None
    family, mask = (1, masks[0]) if ip.version == 4 else (2, masks[1])
    if existing is not None and len(existing) >= 3:
        mask = min(mask, existing[2])
    net = ipaddress.ip_network(f"{ip}/{mask}", strict=False)
    address = net.network_address.packed[: (mask + 7) // 8]
    return struct.pack("!HBB", family, mask, 0) + address


def _variable(name: str, request: Request, site: Site) -> bytes | None:
    if name == "{qname}":
        return request.qname.encode()
    if name == "{qtype}":
        return struct.pack("!H", request.qtype)
    if name == "{client_ip}":
        return _packed(request.client)
    if name == "{client_port}":
        return struct.pack("!H", request.port)
    if name == "{protocol}":
        return request.proto.encode()
    if name == "{server_ip}":
        return _packed(site.ip) if site.ip is not None else None
    if name == "{server_port}":
        return struct.pack("!H", site.port)
    return None  # a metadata label: kdns has no metadata plugin, so it is always empty


def _packed(address: str) -> bytes | None:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).packed
    except ValueError:
        return None


def _code(tok: Token) -> int:
    try:
        value = int(tok.text, 0)
    except ValueError:
        raise tok.error(f"invalid EDNS0 option code {tok.text!r}") from None
    if not 0 <= value <= 0xFFFF:
        raise tok.error(f"EDNS0 option code {tok.text} is out of range (0-65535)")
    return value


def _mask(tok: Token, most: int, family: str) -> int:
    if not (tok.text.isascii() and tok.text.isdigit()) or int(tok.text) > most:
        raise tok.error(f"invalid {family} bit mask length {tok.text!r} (0-{most})")
    return int(tok.text)


def _local(mode: str, action: str, args: list[Token], revert: bool) -> Edns0Rule:
    code = _code(args[0])
    data = args[1].text
    if data.startswith("{") and data.endswith("}"):
        plugin, slash, label = data[1:-1].partition("/")
        if data not in VARIABLES and not (plugin and slash and label):
            raise args[1].error(f"unsupported variable name {data!r} ({', '.join(VARIABLES)})")
        if data not in VARIABLES:
            parsing.no_effect(log, f"rewrite edns0 {data}", "kdns has no metadata plugin")
        return Edns0Rule(mode, action, code, variable=data, revert=revert)
    raw = data.encode()
    if data.startswith("0x"):
        try:
            raw = bytes.fromhex(data[2:])
        except ValueError:
            raise args[1].error(f"invalid hex data {data!r}") from None
    return Edns0Rule(mode, action, code, raw, revert=revert)


def parse_edns0(mode: str, head: Token, args: list[Token]) -> Edns0Rule:
    if len(args) < 2:
        raise head.error("too few arguments for an EDNS0 rule: usage: edns0 TYPE ACTION ...")
    kind, action = args[0].text.lower(), args[1].text.lower()
    if action not in ACTIONS:
        raise args[1].error(f"invalid action: {action!r} (expected one of: {', '.join(ACTIONS)})")
    rest = args[2:]
    revert = bool(rest) and rest[-1].text.lower() == "revert"
    if revert:
        rest = rest[:-1]
    unset = action == "unset"
    want = {"local": 1 if unset else 2, "nsid": 0, "subnet": 0 if unset else 2}
    if kind not in want:
        raise args[0].error(f"invalid EDNS0 rule type {kind!r} (local, nsid or subnet)")
    if len(rest) != want[kind]:
        raise head.error(
            f"EDNS0 {kind} {action} rules take {want[kind]} argument(s) after the action, "
            f"got {len(rest)}"
        )
    if kind == "nsid":
        return Edns0Rule(mode, action, OPT_NSID, revert=revert)
    if kind == "subnet":
        masks = (0, 0) if unset else (_mask(rest[0], 32, "IPv4"), _mask(rest[1], 128, "IPv6"))
        return Edns0Rule(mode, action, OPT_SUBNET, masks=masks, revert=revert)
    if unset:
        return Edns0Rule(mode, action, _code(rest[0]), revert=revert)
    return _local(mode, action, rest, revert)

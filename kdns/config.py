"""Corefile meaning: server keys become zones and ports, directives become plugin configs.

`load()` is everything `kdns check` does: it raises CorefileError (file:line) for any problem
and touches no sockets, so a broken Corefile is refused before anything changes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdns import corefile
from kdns.corefile import CorefileError, CorefileErrors, Directive, ServerBlock, Token
from kdns.plugins import directives, parsing
from kdns.plugins.base import BlockInfo

log = logging.getLogger("kdns.config")

# CoreDNS 1.14 reads `unix://` as a transport but makes no server for it: the block is checked
# and serves nothing. kdns does the same rather than refuse a Corefile CoreDNS loads.
UNSERVED_SCHEMES = frozenset({"unix"})

DEFAULT_PORT = 53


@dataclass(frozen=True, slots=True)
class Address:
    scheme: str
    zones: tuple[str, ...]
    port: int


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    config: Any
    directive: Directive


@dataclass(frozen=True, slots=True)
class BlockConfig:
    zones: tuple[str, ...]
    port: int
    entries: tuple[Entry, ...]  # in chain order
    file: str
    line: int

    @property
    def info(self) -> BlockInfo:
        return BlockInfo(self.zones, self.port, self.file, self.line)

    def get(self, name: str) -> Entry | None:
        for e in self.entries:
            if e.name == name:
                return e
        return None

    def all(self, name: str) -> list[Entry]:
        return [e for e in self.entries if e.name == name]


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    blocks: tuple[BlockConfig, ...]
    digest: str


def parse_key(tok: Token, default_port: int) -> Address:
    """`[dns://]ZONE[:PORT]` -> Address; `:53` means the root zone."""
    text = tok.text
    scheme = "dns"
    if "://" in text:
        scheme, text = text.split("://", 1)
        if scheme not in ("dns", *UNSERVED_SCHEMES):
            raise tok.error(
                f"transport {scheme}:// is not supported yet (kdns serves plain DNS: dns://)"
            )
    port = default_port
    host = text
    if text.startswith("["):
        raise tok.error("an IPv6 literal is not a zone; use bind to choose listen addresses")
    if ":" in text:
        host, _, port_text = text.rpartition(":")
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise tok.error(f"invalid port {port_text!r} in server key {tok.text!r}")
        port = int(port_text)
    host = host or "."
    zone_tok = Token(host, tok.file, tok.line)
    return Address(scheme, tuple(parsing.zone(zone_tok)), port)


def build_blocks(
    block: ServerBlock, default_port: int = DEFAULT_PORT
) -> tuple[list[BlockConfig], list[CorefileError]]:
    """The block's meaning: one BlockConfig per port its keys name (`a.com b.com:1053 { }`
    serves a.com on 53 and b.com on 1053, as CoreDNS does), each with its own plugins, and
    every bad key and directive, not only the first."""
    errors: list[CorefileError] = []
    by_port: dict[int, list[str]] = {}
    for k in block.keys:
        try:
            a = parse_key(k, default_port)
        except CorefileError as exc:
            errors.append(exc)
            continue
        if a.scheme in UNSERVED_SCHEMES:
            log.warning(
                "%s:%d: server key %s: no listener for %s:// (as in CoreDNS); nothing is served",
                k.file,
                k.line,
                k.text,
                a.scheme,
            )
            continue
        zones = by_port.setdefault(a.port, [])
        zones.extend(z for z in a.zones if z not in zones)
    configs: list[BlockConfig] = []
    # Directives are still checked when every key is bad: against the root zone.
    for port, zones in by_port.items() or [(default_port, [])]:
        info = BlockInfo(tuple(zones) or (".",), port, block.file, block.line)
        entries: list[Entry] = []
        seen: dict[str, Directive] = {}
        for d in block.directives:
            try:
                _add_entry(d, info, entries, seen)
            except CorefileError as exc:
                # A directive's parse looks at its own tokens only: the next one is still
                # checked. Each port parses the same lines: a problem is reported once.
                _extend(errors, exc)
        entries.sort(key=lambda e: directives.position(e.name))
        if zones:  # only the zones of keys that parsed take part in the overlap check
            configs.append(BlockConfig(tuple(zones), port, tuple(entries), block.file, block.line))
    return configs, errors


def _add_entry(
    d: Directive, info: BlockInfo, entries: list[Entry], seen: dict[str, Directive]
) -> None:
    spec = directives.spec(d.name)
    if spec is None:
        if directives.known_directive(d.name):
            raise d.error(f'directive "{d.name}" is not supported yet')
        raise d.error(directives.unknown_message(d.name))
    if d.name in seen and not spec.repeatable:
        first = seen[d.name]
        raise d.error(
            f'directive "{d.name}" can only be used once per server block '
            f"(first at {first.file}:{first.line})"
        )
    parsed = spec.parse(d, info)
    if d.name in seen and spec.merge is not None:
        i = next(i for i, e in enumerate(entries) if e.name == d.name)
        entries[i] = Entry(d.name, spec.merge(entries[i].config, parsed), entries[i].directive)
        return
    seen[d.name] = d
    entries.append(Entry(d.name, parsed, d))


def _extend(errors: list[CorefileError], exc: CorefileError) -> None:
    for e in exc.errors if isinstance(exc, CorefileErrors) else (exc,):
        if all(str(e) != str(other) for other in errors):
            errors.append(e)


def from_text(text: str, path: str = "Corefile") -> Config:
    """The configuration of a Corefile; raises CorefileError (CorefileErrors for several)."""
    errors: list[CorefileError] = []
    blocks: list[BlockConfig] = []
    for server in corefile.parse(text, path):
        built, problems = build_blocks(server)
        blocks.extend(built)
        errors.extend(problems)
    seen: dict[tuple[str, int], BlockConfig] = {}
    for b in blocks:
        for z in b.zones:
            if (z, b.port) in seen:
                other = seen[(z, b.port)]
                errors.append(
                    CorefileError(
                        b.file,
                        b.line,
                        f"zone {z} on port {b.port} is already served by the block at "
                        f"{other.file}:{other.line}",
                    )
                )
            seen[(z, b.port)] = b
    errors.sort(key=lambda e: (e.file != path, e.file, e.line))
    CorefileErrors.raise_if(errors)
    return Config(path, tuple(blocks), hashlib.sha512(text.encode()).hexdigest())


def load(path: str | Path) -> Config:
    p = Path(path)
    return from_text(corefile.read(p), str(p))

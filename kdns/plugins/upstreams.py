"""Upstream addresses of `forward`: `IP[:PORT]`, `dns://`, `tls://IP[%NAME][:PORT]`, and
resolv.conf files naming nameservers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from kdns.cluster import search
from kdns.corefile import Token
from kdns.hostport import show, split_optional


@dataclass(frozen=True, slots=True)
class UpstreamAddr:
    host: str
    port: int
    tls: bool = False  # DNS over TLS (a tls:// upstream)
    server_name: str | None = None  # tls://IP%NAME: the name its certificate must carry

    @property
    def label(self) -> str:
        return show(self.host, self.port)


def _digits(text: str) -> bool:
    # str.isdigit() alone accepts '¹', which int() refuses.
    return text.isascii() and text.isdigit()


def _host_port(tok: Token, text: str, default_port: int = 53) -> UpstreamAddr | None:
    """`IP`, `IP:PORT`, `[IPv6]:PORT` -> address; None if `text` is no address at all."""
    try:
        host, port_text = split_optional(text)
    except ValueError:
        raise tok.error(f"invalid upstream address {tok.text!r}") from None
    port = default_port
    if port_text is not None:
        if not _digits(port_text):
            raise tok.error(f"invalid port in upstream {tok.text!r}")
        port = int(port_text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not 0 < port < 65536:
        raise tok.error(f"upstream port must be between 1 and 65535, got {port}")
    return UpstreamAddr(str(ip), port)


def _scheme_upstream(tok: Token, scheme: str, rest: str) -> UpstreamAddr:
    name = None
    if scheme == "tls" and "%" in rest:
        # tls://IP%NAME[:PORT] and tls://[IPv6%NAME]:PORT name the certificate's server name.
        head, _, tail = rest.partition("%")
        name, sep, after = tail.partition("]" if head.startswith("[") else ":")
        if head.startswith("["):
            rest = f"{head}]{after}"
        else:
            after_port = after if sep else ""
            rest = f"{head}:{after_port}" if after_port else head
    found = _host_port(tok, rest, 853 if scheme == "tls" else 53)
    if found is None or (name is not None and not name):
        raise tok.error(f"upstream {tok.text!r} is not an IP address")
    if scheme == "tls":
        return UpstreamAddr(found.host, found.port, tls=True, server_name=name)
    return found


def resolv_conf_nameservers(path: Path) -> list[str]:
    return [
        args[0].split("%")[0]  # a link-local scope names an interface, not the upstream
        for _, key, args in search.resolv_lines(path.read_text())
        if key == "nameserver" and args
    ]


def parse_upstream(tok: Token, base_dir: Path) -> list[UpstreamAddr]:
    text = tok.text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme not in ("dns", "tls"):
            raise tok.error(
                f"upstream transport {scheme}:// is not supported (kdns forwards DNS and DNS "
                "over TLS: IP[:port], dns://IP[:port], tls://IP[%NAME][:port])"
            )
        return [_scheme_upstream(tok, scheme, rest)]
    found = _host_port(tok, text)
    if found is not None:
        return [found]
    path = base_dir / text
    if not path.is_file():
        raise tok.error(f"upstream {text!r} is not an IP address or an existing resolv.conf file")
    try:
        servers = resolv_conf_nameservers(path)
    except OSError as exc:
        raise tok.error(f"cannot read {text}: {exc.strerror}") from None
    out = []
    for s in servers:
        addr = _host_port(tok, s if ":" not in s else f"[{s}]")
        if addr is not None:
            out.append(addr)
    return out  # an empty file is fine while other upstreams remain (CoreDNS)

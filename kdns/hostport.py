"""Host and port pairs as the Corefile writes them and as logs and URLs show them.

An IPv6 host is written in brackets (`[::1]:53`, RFC 3986); an empty host means every interface.
"""

from __future__ import annotations

HostPort = tuple[str, int]  # host "" means every interface


def bracket(host: str) -> str:
    """An IPv6 host in brackets, any other host as it is."""
    return f"[{host}]" if ":" in host else host


def show(host: str, port: int) -> str:
    """`host:port`, with brackets around an IPv6 host."""
    return f"{bracket(host)}:{port}"


def split(text: str) -> tuple[str, str]:
    """`[HOST]:PORT` → (host, port text), as Go's net.SplitHostPort reads it.

    Raises ValueError saying what is wrong; the port text is not checked here.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(
            f"missing port in address {text!r} (expected e.g. :8080 or 127.0.0.1:8080)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets: [{host}]:{port_text}")
    return host, port_text


def split_optional(text: str) -> tuple[str, str | None]:
    """`HOST`, `HOST:PORT`, `[HOST]`, `[HOST]:PORT` or a bare IPv6 address → (host, port text,
    None when there is none), as upstream addresses and `--server` are written.

    Raises ValueError for an unclosed bracket or text after it that is not `:PORT`; the port
    text is not checked here.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed bracket in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"{rest!r} after the bracket in {text!r}")
        return host, rest[1:]
    if text.count(":") == 1:
        host, _, port_text = text.partition(":")
        return host, port_text
    return text, None  # a name, an IPv4 address, or an IPv6 address without a port

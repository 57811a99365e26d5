"""Domain names as text: normalising, zone membership, wire form, reverse (PTR) names.

Text names are absolute (trailing dot). A label holding a literal dot or backslash is written with a
backslash escape (``\\.``, ``\\\\``) so splitting on unescaped dots is always exact.
"""

from __future__ import annotations

import ipaddress


def normalize(name: str) -> str:
    """Lower-case, absolute form used as a lookup key."""
    name = name.lower()
    return name if name.endswith(".") else name + "."


def absolute(name: str) -> str:
    """`name` with its trailing dot, letter case kept."""
    return name if name.endswith(".") else name + "."


def split(name: str) -> list[str]:
    """Labels of an absolute or relative name, honouring backslash escapes."""
    if name in ("", "."):
        return []
    if "\\" not in name:  # the common case, at C speed
        return name[:-1].split(".") if name.endswith(".") else name.split(".")
    labels: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\" and i + 1 < len(name):
            cur.append(name[i : i + 2])
            i += 2
            continue
        if ch == ".":
            labels.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        labels.append("".join(cur))
    return labels


def is_subdomain(name: str, zone: str) -> bool:
    """True when `name` equals `zone` or lies below it (both normalised)."""
    if zone == ".":
        return True
    return name == zone or name.endswith("." + zone)


def longest_zone(name: str, zones: tuple[str, ...] | list[str]) -> str | None:
    """The most specific of `zones` that contains `name`, as CoreDNS picks a zone."""
    best: str | None = None
    for zone in zones:
        if is_subdomain(name, zone) and (best is None or len(zone) > len(best)):
            best = zone
    return best


class Zones:
    """The zones a plugin serves, matched against lower-case absolute names."""

    __slots__ = ("_dotted", "zones")

    def __init__(self, zones: tuple[str, ...]) -> None:
        self.zones = zones
        # Longest first: the first zone a name lies in is the most specific (CoreDNS's pick).
        ordered = sorted(zones, key=len, reverse=True)
        self._dotted = tuple((z, "." + z) for z in ordered)

    def match(self, name: str) -> str | None:
        for zone, dotted in self._dotted:
            if zone == "." or name == zone or name.endswith(dotted):
                return zone
        return None


def label_to_wire(label: str) -> bytes:
    if "\\" not in label:
        return label.encode("latin-1", errors="replace")
    out = bytearray()
    i = 0
    while i < len(label):
        ch = label[i]
        if ch == "\\" and i + 1 < len(label):
            nxt = label[i + 1]
            digits = label[i + 1 : i + 4]
            if len(digits) == 3 and digits.isascii() and digits.isdigit():
                out.append(int(digits) & 0xFF)
                i += 4
                continue
            out += nxt.encode("latin-1")
            i += 2
            continue
        out += ch.encode("latin-1", errors="replace")
        i += 1
    return bytes(out)


def to_wire(name: str) -> bytes:
    """Uncompressed wire form of a text name."""
    out = bytearray()
    for label in split(name):
        raw = label_to_wire(label)
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad label length in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"name too long: {name!r}")
    return bytes(out)


def label_from_wire(raw: bytes) -> str:
    """Text form of one wire label: dots and backslashes escaped, other bytes kept (latin-1)."""
    text = raw.decode("latin-1")
    if "." in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace(".", "\\.")
    return text


def ptr_to_ip(name: str) -> str | None:
    """The address a reverse name stands for, or None when it is not a full reverse name."""
    labels = split(normalize(name))
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        octets = labels[3::-1]
        if all(o.isascii() and o.isdigit() and int(o) < 256 and str(int(o)) == o for o in octets):
            return ".".join(octets)
        return None
    if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = labels[31::-1]
        if all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            hexs = "".join(nibbles)
            return str(ipaddress.IPv6Address(int(hexs, 16)))
        return None
    return None


def reverse_zone_of_cidr(cidr: str) -> list[str]:
    """Reverse zones covering a CIDR, as CoreDNS expands `10.0.0.0/24` server keys."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 4:
        step = 8
        total = 32
    else:
        step = 4
        total = 128
    boundary = ((net.prefixlen + step - 1) // step) * step
    boundary = min(boundary, total)
    zones = []
    for sub in net.subnets(new_prefix=boundary) if boundary > net.prefixlen else [net]:
        rev = sub.network_address.reverse_pointer
        drop = (total - boundary) // step
        parts = rev.split(".")[drop:]
        zones.append(".".join(parts) + ".")
    return zones

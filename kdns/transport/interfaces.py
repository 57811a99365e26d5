"""The IP addresses of a network interface by its name (`lo`, `eth0`), for `bind`.

CoreDNS's `bind` takes an interface name and listens on every address the interface has when the
configuration is read. Python has no getifaddrs(3); libc's is called through ctypes. IPv6
link-local addresses are left out: listening on one needs a zone (`%eth0`), which CoreDNS's
listener does not add either.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import os
import socket


class _Sockaddr(ctypes.Structure):
    _fields_ = (("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_char * 14))


class _SockaddrIn(ctypes.Structure):
    _fields_ = (
        ("sin_family", ctypes.c_ushort),
        ("sin_port", ctypes.c_uint16),
        ("sin_addr", ctypes.c_ubyte * 4),
    )


class _SockaddrIn6(ctypes.Structure):
    _fields_ = (
        ("sin6_family", ctypes.c_ushort),
        ("sin6_port", ctypes.c_uint16),
        ("sin6_flowinfo", ctypes.c_uint32),
        ("sin6_addr", ctypes.c_ubyte * 16),
        ("sin6_scope_id", ctypes.c_uint32),
    )


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = (
    ("ifa_next", ctypes.POINTER(_Ifaddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.POINTER(_Sockaddr)),
    ("ifa_netmask", ctypes.POINTER(_Sockaddr)),
    ("ifa_ifu", ctypes.POINTER(_Sockaddr)),
    ("ifa_data", ctypes.c_void_p),
)


def names() -> set[str]:
    """The interfaces this host has."""
    return {name for _, name in socket.if_nameindex()}


def addresses(name: str) -> list[str] | None:
    """The interface's IPv4 then IPv6 addresses (link-local IPv6 left out), in the kernel's
    order; None if there is no such interface."""
    if name not in names():
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"getifaddrs: {os.strerror(err)}")
    v4: list[str] = []
    v6: list[str] = []
    try:
        node = head
        while node:
            ifa = node.contents
            if ifa.ifa_name.decode() == name and ifa.ifa_addr:
                family = ifa.ifa_addr.contents.sa_family
                if family == socket.AF_INET:
                    raw = ctypes.cast(ifa.ifa_addr, ctypes.POINTER(_SockaddrIn)).contents
                    v4.append(str(ipaddress.IPv4Address(bytes(raw.sin_addr))))
                elif family == socket.AF_INET6:
                    raw6 = ctypes.cast(ifa.ifa_addr, ctypes.POINTER(_SockaddrIn6)).contents
                    ip6 = ipaddress.IPv6Address(bytes(raw6.sin6_addr))
                    if not ip6.is_link_local:
                        v6.append(str(ip6))
            node = ifa.ifa_next
    finally:
        libc.freeifaddrs(head)
    return v4 + v6

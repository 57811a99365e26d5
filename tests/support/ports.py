"""Free loopback ports for servers under test."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port number free for both UDP and TCP on `host` (DNS listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port found")

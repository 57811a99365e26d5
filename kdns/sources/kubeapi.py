"""Talking to the Kubernetes API: connection settings, the client, errors, pacing, backoff,
fail-over between API servers, and the lines of a watch stream.

The reflectors in kdns.sources.kubernetes use these; the settings come from the `kubernetes`
directive (`endpoint`, `kubeconfig [CONTEXT]`, `tls`), or the pod's service account.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from kdns.cluster.options import Options

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MAX_LINE = 64 * 1024 * 1024  # one watch event; a larger line is a broken stream


class ApiSettings(Protocol):
    """Where the API server is and how to authenticate (the `kubernetes` directive's options)."""

    @property
    def endpoint(self) -> str | None: ...
    @property
    def kubeconfig(self) -> str | None: ...
    @property
    def context(self) -> str | None: ...
    @property
    def tls(self) -> tuple[str, str, str] | None: ...


class SourceSettings(ApiSettings, Protocol):
    """What the reflectors read besides the connection: selectors, and whether Pods are needed."""

    @property
    def endpoints(self) -> tuple[str, ...]: ...
    @property
    def options(self) -> Options: ...
    @property
    def needs_pods(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """How the reflectors pace themselves. Defaults suit a real API server."""

    watch_timeout: float = 300.0  # server-side timeoutSeconds, plus up to 50% jitter
    read_timeout: float = 90.0  # no byte for this long: the connection is presumed dead
    connect_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    page_size: int = 500
    publish_delay: float = 0.005  # first unpublished event -> publish, at the earliest
    publish_max_delay: float = 0.1  # the adaptive delay never exceeds this


DEFAULT_TIMING = Timing()


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Expired(Exception):
    """The resourceVersion (or continue token) is too old: relist."""


class Failover:
    """The API server URLs of `endpoint URL URL...`, used one at a time.

    Every reflector calls the current URL; a connection failure there moves all of them to the
    next one, round robin. The URLs are API servers of one cluster: they share their storage, so
    resource versions stay valid across a switch (if not, the watch gets 410 and relists).
    """

    def __init__(self, urls: tuple[str, ...]) -> None:
        self.urls = tuple(u.rstrip("/") for u in urls)
        self._at = 0

    @property
    def current(self) -> str:
        return self.urls[self._at]

    def failed(self, url: str) -> str | None:
        """A call to `url` could not reach it: the URL to use now, or None when there is no
        other, or another reflector already moved on from `url` (the failures of one outage
        switch once)."""
        if len(self.urls) < 2 or url != self.current:
            return None
        self._at = (self._at + 1) % len(self.urls)
        return self.current


class Backoff:
    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next(self) -> float:
        base = min(self.timing.backoff_max, self.timing.backoff_initial * float(2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return base * random.uniform(0.5, 1.0)  # full jitter keeps replicas from stampeding


def status_message(body: bytes) -> str:
    """The `message` (or `reason`) of a Kubernetes Status body, or the body's start."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or "")
    return ""


async def make_api_client(config: ApiSettings) -> k8s_client.ApiClient:
    """An ApiClient for `endpoint`, `kubeconfig [CONTEXT]`, or the pod's service account."""
    cfg = k8s_client.Configuration()
    if config.kubeconfig:
        await k8s_config.load_kube_config(
            config_file=config.kubeconfig,
            context=config.context,
            client_configuration=cfg,
            persist_config=False,
        )
        if config.endpoint:
            cfg.host = config.endpoint.rstrip("/")
    elif config.endpoint:
        cfg.host = config.endpoint.rstrip("/")
    else:
        # Token re-read every minute by the loader's refresh hook, so rotation is followed.
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=cfg,
            try_refresh_token=True,
            token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
            cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        )
    if config.tls:
        cfg.cert_file, cfg.key_file, cfg.ssl_ca_cert = config.tls
    return k8s_client.ApiClient(configuration=cfg)


async def watch_lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Newline-delimited lines of any length (aiohttp's readline stops at 128 KiB)."""
    pending: list[bytes] = []
    size = 0
    async for chunk in stream.iter_any():
        if b"\n" not in chunk:
            pending.append(chunk)
            size += len(chunk)
            if size > MAX_LINE:
                raise ValueError(f"watch event larger than {MAX_LINE} bytes")
            continue
        if pending:
            chunk = b"".join((*pending, chunk))
            pending.clear()
        *complete, rest = chunk.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
        if rest:
            pending.append(rest)
        size = len(rest)
    tail = b"".join(pending)
    if tail.strip():
        yield tail

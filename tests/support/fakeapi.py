"""An in-process fake Kubernetes API server (aiohttp) speaking the real list/watch protocol.

It serves Services, EndpointSlices (discovery.k8s.io/v1), Namespaces, Pods and ServiceImports
(multicluster.x-k8s.io/v1alpha1) to any client, notably the real kubernetes-asyncio one, with the
wire behaviour kdns has to survive:

- list: `{"kind": "<Kind>List", "metadata": {"resourceVersion", "continue"}, "items": [...]}`,
  paging with `limit` / `continue` served from a consistent snapshot (an expired continue token
  is a 410), label selectors, simple field selectors (`a.b!=x`, `a.b=x`);
- watch (`watch=true|True|1`): HTTP 200, chunked, one JSON event per line (ADDED, MODIFIED,
  DELETED, BOOKMARK, ERROR) replayed from the history after `resourceVersion`, then live;
  `timeoutSeconds` ends the stream; a version older than the compacted history is an ERROR 410
  event; objects leaving or entering a selector appear as DELETED / ADDED;
- faults: plain HTTP `Status` bodies (403, 410, 500...) per resource, closing every open
  watch stream, stalling streams (connection open, nothing sent), taking the whole server down
  and back up on the same port, and compacting the history.

One global resourceVersion counter orders every change, as etcd does. Everything listens on
127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    api_version: str
    prefix: str  # "/api/v1" or "/apis/<group>/<version>"
    namespaced: bool = True


RESOURCES = {
    r.plural: r
    for r in (
        Resource("services", "Service", "v1", "/api/v1"),
        Resource(
            "endpointslices", "EndpointSlice", "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1"
        ),
        Resource("namespaces", "Namespace", "v1", "/api/v1", namespaced=False),
        Resource("pods", "Pod", "v1", "/api/v1"),
        Resource(
            "serviceimports",
            "ServiceImport",
            "multicluster.x-k8s.io/v1alpha1",
            "/apis/multicluster.x-k8s.io/v1alpha1",
        ),
    )
}
BY_KIND = {r.kind: r for r in RESOURCES.values()}


def status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


# -- selectors (an independent, deliberately small implementation) ------------------------------
def _split_top(text: str) -> list[str]:
    parts, cur, depth = [], "", 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_match(selector: str, labels: dict[str, str]) -> bool:
    for part in _split_top(selector):
        words = part.split()
        if len(words) >= 3 and words[1] in ("in", "notin"):
            values = {v.strip() for v in part.split("(", 1)[1].rstrip(")").split(",")}
            inside = labels.get(words[0]) in values
            if (words[1] == "in") != inside:
                return False
        elif "!=" in part:
            k, v = (s.strip() for s in part.split("!=", 1))
            if labels.get(k) == v:
                return False
        elif "=" in part:
            k, v = (s.strip() for s in part.replace("==", "=").split("=", 1))
            if labels.get(k) != v:
                return False
        elif part.startswith("!"):
            if part[1:].strip() in labels:
                return False
        elif part not in labels:
            return False
    return True


def _field(obj: Obj, path: str) -> str:
    cur: Any = obj
    for step in path.split("."):
        cur = cur.get(step) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def field_match(selector: str, obj: Obj) -> bool:
    for part in _split_top(selector):
        if "!=" in part:
            k, v = part.split("!=", 1)
            if _field(obj, k.strip()) == v.strip():
                return False
        elif "=" in part:
            k, v = part.replace("==", "=").split("=", 1)
            if _field(obj, k.strip()) != v.strip():
                return False
    return True


@dataclass
class _Watcher:
    resource: Resource
    namespace: str | None
    matches: Callable[[Obj], bool]
    bookmarks: bool
    queue: asyncio.Queue[tuple[int, str, Obj, Obj | None]] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch", "").lower() in ("true", "1")


class FakeApiServer:
    """Start with `async with FakeApiServer() as api:`; `api.url` is the base URL."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        bookmark_interval: float | None = None,
        page_size_cap: int | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.token = token  # when set, requests need `Authorization: Bearer <token>`
        self.bookmark_interval = bookmark_interval
        self.page_size_cap = page_size_cap
        self.port = 0
        self.rv = 100
        self.compacted = 0  # watches from a version below this get 410 Expired
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {p: {} for p in RESOURCES}
        self.history: list[tuple[int, str, str, Obj, Obj | None]] = []
        self.requests: list[Request] = []
        self.failures: dict[str, tuple[int, str]] = {}  # plural -> (HTTP code, reason)
        self.stalled = False
        self.watchers: list[_Watcher] = []
        self._snapshots: dict[int, tuple[int, list[Obj]]] = {}
        self._runner: web.AppRunner | None = None
        self.listed = asyncio.Event()
        self.watch_opened = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeApiServer:
        await self.up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def up(self) -> None:
        """Start serving (again, on the same port after `down()`)."""
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2, access_log=None)
        await runner.setup()
        site = web.TCPSite(
            runner, "127.0.0.1", self.port, ssl_context=self.ssl_context, reuse_address=True
        )
        await site.start()
        if not self.port:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner

    async def down(self) -> None:
        """Stop listening and drop every connection, as a crashed API server would."""
        self.close_watches()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- state changes --------------------------------------------------------------------------
    def _key(self, obj: Obj) -> tuple[str, str]:
        meta = obj["metadata"]
        return (meta.get("namespace", ""), meta["name"])

    def _emit(self, plural: str, etype: str, obj: Obj, old: Obj | None) -> int:
        self.history.append((self.rv, plural, etype, obj, old))
        for w in self.watchers:
            if w.resource.plural == plural:
                w.queue.put_nowait((self.rv, etype, obj, old))
        return self.rv

    def apply(self, obj: Obj) -> int:
        """Create or replace an object (its `kind` picks the resource). Returns its version."""
        res = BY_KIND[obj["kind"]]
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", res.api_version)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta.setdefault("namespace", "default")
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        key = self._key(obj)
        old = self.objects[res.plural].get(key)
        self.objects[res.plural][key] = obj
        return self._emit(res.plural, "MODIFIED" if old else "ADDED", obj, old)

    def delete(self, kind: str, namespace: str, name: str) -> int:
        res = BY_KIND[kind]
        key = (namespace if res.namespaced else "", name)
        old = self.objects[res.plural].pop(key)
        self.rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        return self._emit(res.plural, "DELETED", gone, None)

    def load(self, objs: Iterable[Obj]) -> None:
        """Create many objects quickly (no history: as if they existed before any watch)."""
        for obj in objs:
            res = BY_KIND[obj["kind"]]
            obj.setdefault("apiVersion", res.api_version)
            meta = obj.setdefault("metadata", {})
            if res.namespaced:
                meta.setdefault("namespace", "default")
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            self.objects[res.plural][self._key(obj)] = obj
        self.compacted = self.rv

    def compact(self) -> None:
        """Forget the history: every watch from an older version now gets 410 Expired."""
        self.compacted = self.rv + 1
        self.history.clear()
        self._snapshots.clear()

    def fail(self, plural: str, code: int = 403, reason: str = "Forbidden") -> None:
        """Answer every request for `plural` with a plain HTTP `code` Status body."""
        self.failures[plural] = (code, reason)

    def heal(self, plural: str | None = None) -> None:
        if plural is None:
            self.failures.clear()
        else:
            self.failures.pop(plural, None)

    def close_watches(self) -> None:
        """End every open watch stream cleanly (the server-side close clients must resume)."""
        for w in list(self.watchers):
            w.closed.set()

    def stall(self, on: bool = True) -> None:
        """Stop writing to open and new watch streams while keeping their connections open."""
        self.stalled = on

    def expire_watches(self) -> None:
        """Send ERROR 410 on every open watch (the server dropped their window)."""
        self.compact()
        for w in list(self.watchers):
            w.queue.put_nowait((0, "ERROR", status_body(410, "Expired", "too old"), None))

    def watch_requests(self, plural: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/" + plural) and r.is_watch]

    def list_requests(self, plural: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/" + plural) and not r.is_watch]

    # -- HTTP -----------------------------------------------------------------------------------
    def _route(self, path: str) -> tuple[Resource, str | None] | None:
        for res in RESOURCES.values():
            if path == f"{res.prefix}/{res.plural}":
                return res, None
            head = f"{res.prefix}/namespaces/"
            tail = f"/{res.plural}"
            if res.namespaced and path.startswith(head) and path.endswith(tail):
                ns = path[len(head) : -len(tail)]
                if ns and "/" not in ns:
                    return res, ns
        return None

    def _one(self, path: str) -> web.Response | None:
        """GET of one namespaced object (`.../namespaces/NS/PLURAL/NAME`), or None."""
        for res in RESOURCES.values():
            head, _, rest = path.partition(f"{res.prefix}/namespaces/")
            parts = rest.split("/")
            if head or len(parts) != 3 or parts[1] != res.plural or not res.namespaced:
                continue
            namespace, _, name = parts
            if res.plural in self.failures:
                code, reason = self.failures[res.plural]
                return self._status(code, reason, f'{res.plural} "{name}" is {reason.lower()}')
            obj = self.objects[res.plural].get((namespace, name))
            if obj is None:
                return self._status(404, "NotFound", f'{res.plural} "{name}" not found')
            return web.json_response({"apiVersion": res.api_version, "kind": res.kind, **obj})
        return None

    def _matcher(self, q: dict[str, str], namespace: str | None) -> Callable[[Obj], bool]:
        labels = q.get("labelSelector", "")
        fields = q.get("fieldSelector", "")

        def matches(obj: Obj) -> bool:
            meta = obj.get("metadata", {})
            if namespace is not None and meta.get("namespace") != namespace:
                return False
            if labels and not label_match(labels, meta.get("labels") or {}):
                return False
            return not (fields and not field_match(fields, obj))

        return matches

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        q = dict(request.query)
        req = Request(request.method, request.path, q, dict(request.headers))
        self.requests.append(req)
        if self.token is not None and request.headers.get("Authorization") != (
            f"Bearer {self.token}"
        ):
            return self._status(401, "Unauthorized", "Unauthorized")
        one = self._one(request.path)
        if one is not None:
            return one
        routed = self._route(request.path)
        if routed is None:
            return self._status(404, "NotFound", f"the server could not find {request.path}")
        res, namespace = routed
        if res.plural in self.failures:
            code, reason = self.failures[res.plural]
            verb = "watch" if req.is_watch else "list"
            return self._status(
                code,
                reason,
                f'{res.plural} is forbidden: User "system:serviceaccount:kube-system:kdns" '
                f'cannot {verb} resource "{res.plural}" at the cluster scope'
                if code == 403
                else f"{reason}",
            )
        if req.is_watch:
            return await self._watch(request, res, namespace, q)
        return self._list(res, namespace, q)

    def _status(self, code: int, reason: str, message: str) -> web.Response:
        return web.json_response(status_body(code, reason, message), status=code)

    def _list(self, res: Resource, namespace: str | None, q: dict[str, str]) -> web.Response:
        limit = int(q.get("limit") or 0)
        if self.page_size_cap:
            limit = min(limit or self.page_size_cap, self.page_size_cap)
        token = q.get("continue", "")
        if token:
            sid, offset_text = token.split(":")
            snap = self._snapshots.get(int(sid))
            if snap is None or snap[0] < self.compacted:
                return self._status(410, "Expired", "The provided continue parameter is too old")
            rv, items = snap
            offset = int(offset_text)
        else:
            matches = self._matcher(q, namespace)
            items = [o for _, o in sorted(self.objects[res.plural].items()) if matches(o)]
            rv, offset = self.rv, 0
        self.listed.set()
        meta: Obj = {"resourceVersion": str(rv)}
        page = items[offset:]
        if limit and len(page) > limit:
            page = page[:limit]
            sid = len(self._snapshots) + 1
            self._snapshots[sid] = (rv, items)
            meta["continue"] = f"{sid}:{offset + limit}"
            meta["remainingItemCount"] = len(items) - offset - limit
        body = {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": page,
        }
        return web.Response(body=json.dumps(body), content_type="application/json")

    async def _watch(
        self, request: web.Request, res: Resource, namespace: str | None, q: dict[str, str]
    ) -> web.StreamResponse:
        since_text = q.get("resourceVersion", "")
        since = int(since_text) if since_text.isdigit() else 0
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        bookmarks = q.get("allowWatchBookmarks", "").lower() in ("true", "1")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        w = _Watcher(res, namespace, self._matcher(q, namespace), bookmarks)
        self.watch_opened.set()
        if since and since < self.compacted:
            await self._send(
                resp,
                "ERROR",
                status_body(
                    410, "Expired", f"too old resource version: {since} ({self.compacted})"
                ),
            )
            return resp
        # Replay and subscribe with no await in between, so no change can fall in the gap.
        if since:
            for rv, plural, etype, obj, old in self.history:
                if plural == res.plural and rv > since:
                    w.queue.put_nowait((rv, etype, obj, old))
        else:
            for obj in self.objects[res.plural].values():
                w.queue.put_nowait((self.rv, "ADDED", obj, None))
        self.watchers.append(w)
        try:
            await self._pump(resp, w, timeout)
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.remove(w)
        return resp

    async def _pump(self, resp: web.StreamResponse, w: _Watcher, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        while not w.closed.is_set():
            if self.stalled:
                await self._wait_unstalled(w)
                continue
            wait = None if deadline is None else deadline - loop.time()
            if self.bookmark_interval and w.bookmarks:
                wait = self.bookmark_interval if wait is None else min(wait, self.bookmark_interval)
            if wait is not None and wait <= 0:
                return
            getter = asyncio.ensure_future(w.queue.get())
            closer = asyncio.ensure_future(w.closed.wait())
            done, _ = await asyncio.wait(
                {getter, closer}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            closer.cancel()
            if getter not in done:
                getter.cancel()
                if closer not in done and self.bookmark_interval and w.bookmarks:
                    await self._send(resp, "BOOKMARK", self._bookmark(w.resource, self.rv))
                continue
            _, etype, obj, old = getter.result()
            if self.stalled:
                await self._wait_unstalled(w)  # hold the event back; the connection stays open
            if w.closed.is_set():
                return
            if etype == "ERROR":
                await self._send(resp, "ERROR", obj)
                return
            if etype != "BOOKMARK":
                now, before = w.matches(obj), old is not None and w.matches(old)
                if etype == "MODIFIED" and now != before:
                    etype = "ADDED" if now else "DELETED"
                elif not now:
                    continue
            await self._send(resp, etype, obj)

    async def _wait_unstalled(self, w: _Watcher) -> None:
        while self.stalled and not w.closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await w.closed.wait()

    @staticmethod
    def _bookmark(res: Resource, rv: int) -> Obj:
        return {
            "kind": res.kind,
            "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(rv)},
        }

    async def bookmark(self) -> None:
        """Send a BOOKMARK at the current version on every watch that allows them."""
        for w in list(self.watchers):
            if w.bookmarks:
                w.queue.put_nowait((self.rv, "BOOKMARK", self._bookmark(w.resource, self.rv), None))

    @staticmethod
    async def _send(resp: web.StreamResponse, etype: str, obj: Obj) -> None:
        with contextlib.suppress(ConnectionResetError, ConnectionError):
            await resp.write(json.dumps({"type": etype, "object": obj}).encode() + b"\n")


# -- object builders for tests ------------------------------------------------------------------
def service(
    name: str,
    namespace: str = "default",
    cluster_ip: str | None = "10.96.0.10",
    ports: Iterable[tuple[str, int, str]] = (("http", 80, "TCP"),),
    labels: dict[str, str] | None = None,
) -> Obj:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip or "None",
            "clusterIPs": [cluster_ip or "None"],
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports],
        },
    }


def endpoint_slice(
    name: str,
    service_name: str,
    ips: Iterable[str],
    namespace: str = "default",
    ready: bool = True,
    ports: Iterable[tuple[str, int, str]] = (("http", 8080, "TCP"),),
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Obj:
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name, **(labels or {})},
            "annotations": annotations or {},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": f"{service_name}-{i}"},
            }
            for i, ip in enumerate(ips)
        ],
        "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports],
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def pod(name: str, ip: str, namespace: str = "default", phase: str = "Running") -> Obj:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}]},
    }

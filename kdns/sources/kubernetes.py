"""Live Kubernetes source: list + watch reflectors over kubernetes-asyncio, feeding the index.

One reflector per resource (Namespaces, Services, EndpointSlices, Pods when a mode needs them,
ServiceImports with `multicluster`) runs the loop client-go's reflector runs, because
kubernetes-asyncio's `Watch` never relists (it retries a 410 once at the same expired version,
then raises):

    list (paged) -> replace the kind in the index -> mark synced
    watch from the list's resourceVersion, with bookmarks and a server-side timeout
      - stream ends normally        -> watch again from the last version seen
      - 410 Expired (event or HTTP) -> relist; replace_all applies deletions made in the gap
      - 401/403                     -> log the RBAC hint once, back off
      - network error, stall        -> back off (exponential, jittered), watch again; with
                                       several `endpoint` URLs, go on with the next one

The client's HTTP calls are used with `_preload_content=False`, so list bodies and watch lines
are parsed straight into dicts and projected to slim objects; no generated models are built.
Every read has a socket timeout, so a connection that dies silently is noticed.

Events are applied to the builder as they arrive; publishing a new snapshot is coalesced on a
short timer, so a burst costs one publish while a lone change is visible within milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s_client
from prometheus_client import CollectorRegistry

from kdns import heap, metrics
from kdns.cluster import objects
from kdns.cluster.index import IndexBuilder
from kdns.cluster.objects import Key, Namespace, ObjectError, Pod, Service, ServiceImport, Slice
from kdns.sources.kubeapi import (
    DEFAULT_TIMING,
    ApiError,
    Backoff,
    Expired,
    Failover,
    SourceSettings,
    Timing,
    make_api_client,
    status_message,
    watch_lines,
)

log = logging.getLogger("kdns.kubernetes")

POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown"
PROGRAMMING_BUCKETS = tuple(0.001 * 2**i for i in range(20))  # CoreDNS: 1 ms to ~17 min

Projection = Service | Slice | Pod | Namespace | ServiceImport
# The Multi-Cluster Services API group: a CRD, read through the custom objects API.
MCS_GROUP, MCS_VERSION = "multicluster.x-k8s.io", "v1alpha1"
API_GROUPS = {"core": '"" (core)', "discovery": "discovery.k8s.io", "custom": MCS_GROUP}


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str
    plural: str
    api: str  # "core", "discovery" or "custom" (MCS_GROUP)
    list_method: str
    convert: Callable[[Mapping[str, Any]], Projection]
    label_selector: str | None = None
    field_selector: str | None = None


def _selector_text(sel: Any) -> str | None:
    return None if sel is None else str(sel.text)


class KubernetesSource:
    """Feeds `builder` from the API server; `publish()` makes the changes visible."""

    def __init__(
        self,
        config: SourceSettings,
        builder: IndexBuilder,
        publish: Callable[[], None],
        registry: CollectorRegistry,
        *,
        timing: Timing | None = None,
    ) -> None:
        self.config = config
        self.builder = builder
        self._publish = publish
        self.timing = timing or DEFAULT_TIMING
        self.watch_pods = config.needs_pods
        self._api: k8s_client.ApiClient | None = None
        self.failover = Failover(config.endpoints) if len(config.endpoints) > 1 else None
        self._flush: asyncio.TimerHandle | None = None
        self._publish_cost = 0.0
        self._published_at = 0.0
        self._pending_latency: list[tuple[Key, float]] = []
        self._denied_logged: set[str] = set()
        self.resource_versions: dict[str, str] = {}
        self.relists: dict[str, int] = {}
        self._latency = metrics.histogram(
            registry,
            "coredns_kubernetes_dns_programming_duration_seconds",
            "Histogram of the time (in seconds) it took to program a dns instance.",
            ["service_kind"],
            buckets=PROGRAMMING_BUCKETS,
        ).labels(service_kind="headless_with_selector")

    # -- resources ------------------------------------------------------------------------------
    def resources(self) -> list[Resource]:
        opts = self.config.options
        labels = _selector_text(opts.labels)
        out = [
            Resource(
                "Namespace",
                "namespaces",
                "core",
                "list_namespace",
                objects.namespace_from,
                label_selector=_selector_text(opts.namespace_labels),
            ),
            Resource(
                "Service",
                "services",
                "core",
                "list_service_for_all_namespaces",
                objects.service_from,
                label_selector=labels,
            ),
            Resource(
                "EndpointSlice",
                "endpointslices",
                "discovery",
                "list_endpoint_slice_for_all_namespaces",
                objects.slice_from,
                label_selector=labels,
            ),
        ]
        if self.watch_pods:
            out.append(
                Resource(
                    "Pod",
                    "pods",
                    "core",
                    "list_pod_for_all_namespaces",
                    objects.pod_from,
                    label_selector=labels,
                    field_selector=POD_FIELD_SELECTOR,
                )
            )
        if opts.multicluster:
            # As CoreDNS: watched only when a zone is multicluster (the CRD may not exist
            # otherwise), with the same `labels` selector as Services.
            out.append(
                Resource(
                    "ServiceImport",
                    "serviceimports",
                    "custom",
                    "list_cluster_custom_object",
                    objects.service_import_from,
                    label_selector=labels,
                )
            )
        return out

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run every reflector until cancelled; never returns on its own."""
        backoff = Backoff(self.timing)
        while self._api is None:
            try:
                self._api = await make_api_client(self.config)
            except Exception as exc:  # bad kubeconfig, not in a pod: keep trying, say why
                delay = backoff.next()
                log.error(
                    "kubernetes: cannot configure the API client: %s (retrying in %.1fs)",
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        if self.failover is not None:
            self._api.configuration.host = self.failover.current
        log.info("kubernetes: using API server %s", self._api.configuration.host)
        try:
            async with asyncio.TaskGroup() as tg:
                for res in self.resources():
                    tg.create_task(self._reflect(res), name=f"reflector-{res.plural}")
        finally:
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._api is not None:
            api, self._api = self._api, None
            await api.close()

    # -- reflector ------------------------------------------------------------------------------
    async def _reflect(self, res: Resource) -> None:
        backoff = Backoff(self.timing)
        rv: str | None = None
        expired_streak = 0
        while True:
            host = (self._api.configuration.host or "") if self._api is not None else ""
            try:
                if rv is None:
                    rv = await self._list(res)
                started = time.monotonic()
                rv, progressed = await self._watch(res, rv)
                if progressed or time.monotonic() - started > 1.0:
                    backoff.reset()
                    expired_streak = 0
                    continue
                # An empty stream that ended at once: do not spin against such a server.
                await asyncio.sleep(backoff.next())
            except Expired as exc:
                expired_streak += 1
                log.info("kubernetes: %s: %s; relisting", res.plural, exc or "expired")
                if rv is None or expired_streak > 1:
                    await asyncio.sleep(backoff.next())  # expiring again at once: pace it
                rv = None
            except ApiError as exc:
                delay = backoff.next()
                if exc.status in (401, 403) or (exc.status == 404 and res.api == "custom"):
                    self._log_denied(res, exc)
                else:
                    if exc.status >= 500:
                        delay = self._fail_over(host, delay)
                    log.warning("kubernetes: %s: %s (retrying in %.1fs)", res.plural, exc, delay)
                await asyncio.sleep(delay)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                delay = backoff.next()
                # Only a server that cannot be reached: a quiet watch that timed out, or a
                # broken stream, says nothing about the host.
                if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
                    delay = self._fail_over(host, delay)
                log.warning(
                    "kubernetes: %s: API server unreachable or stream broken: %s (retrying in "
                    "%.1fs; serving the last known data)",
                    res.plural,
                    str(exc) or exc.__class__.__name__,
                    delay,
                )
                await asyncio.sleep(delay)
            except Exception:  # a bug must not end the watch for good: log, relist, go on
                delay = backoff.next()
                log.exception(
                    "kubernetes: %s reflector failed; relisting in %.1fs", res.plural, delay
                )
                rv = None
                await asyncio.sleep(delay)

    def _fail_over(self, host: str, delay: float) -> float:
        """`host` did not answer: with several `endpoint` URLs, move every reflector to the
        next one and retry at once. Returns how long to wait before retrying."""
        if self.failover is None or self._api is None:
            return delay
        nxt = self.failover.failed(host)
        if nxt is not None:
            log.warning("kubernetes: API server %s unreachable; switching to %s", host, nxt)
            self._api.configuration.host = nxt
        if self._api.configuration.host != host:
            return min(delay, self.timing.backoff_initial)  # a fresh server: no reason to wait
        return delay

    def _log_denied(self, res: Resource, exc: ApiError) -> None:
        if res.plural in self._denied_logged:
            log.debug("kubernetes: %s still denied: %s", res.plural, exc)
            return
        self._denied_logged.add(res.plural)
        group = API_GROUPS[res.api]
        if exc.status == 404:
            log.error(
                "kubernetes: %s not found (%s): multicluster needs the ServiceImport CRD of "
                "%s/%s installed. Retrying with backoff.",
                res.plural,
                exc,
                MCS_GROUP,
                MCS_VERSION,
            )
            return
        log.error(
            "kubernetes: access to %s denied (%s). kdns needs list and watch on %s in API "
            "group %s: check the ClusterRole bound to its ServiceAccount (see "
            "docs/kubernetes-source.md). Retrying with backoff.",
            res.plural,
            exc,
            res.plural,
            group,
        )

    def _call(self, res: Resource, **kw: Any) -> Any:
        assert self._api is not None
        api: Any
        if res.api == "custom":
            api = k8s_client.CustomObjectsApi(self._api)
            kw.update(group=MCS_GROUP, version=MCS_VERSION, plural=res.plural)
        elif res.api == "discovery":
            api = k8s_client.DiscoveryV1Api(self._api)
        else:
            api = k8s_client.CoreV1Api(self._api)
        if res.label_selector:
            kw["label_selector"] = res.label_selector
        if res.field_selector:
            kw["field_selector"] = res.field_selector
        timeout = aiohttp.ClientTimeout(
            sock_connect=self.timing.connect_timeout, sock_read=self.timing.read_timeout
        )
        return getattr(api, res.list_method)(_preload_content=False, _request_timeout=timeout, **kw)

    @staticmethod
    async def _check(resp: aiohttp.ClientResponse) -> None:
        if resp.status == 200:
            return
        body = await resp.read()
        resp.release()
        if resp.status == 410:
            raise Expired(status_message(body))
        raise ApiError(resp.status, status_message(body) or str(resp.reason))

    async def _list(self, res: Resource) -> str:
        """List every page, then make the index hold exactly what the API holds."""
        with heap.paused():
            return await self._list_pages(res)

    async def _list_pages(self, res: Resource) -> str:
        items: list[Projection] = []
        token: str | None = None
        rv = ""
        while True:
            kw: dict[str, Any] = {"limit": self.timing.page_size}
            if token:
                kw["_continue"] = token
            resp = await self._call(res, **kw)
            try:
                await self._check(resp)
                body = json.loads(await resp.read())
            finally:
                resp.release()
            meta = body.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            for raw in body.get("items") or ():
                obj = self._convert(res, raw)
                if obj is not None:
                    items.append(obj)
            token = meta.get("continue") or None
            if not token:
                break
        first = res.kind not in self.relists
        self.relists[res.kind] = self.relists.get(res.kind, -1) + 1
        self.builder.replace_all(res.kind, items)
        self.builder.mark_synced(res.kind)
        self.resource_versions[res.kind] = rv
        self._flush_now()
        log.info(
            "kubernetes: %s %s: %d objects at resourceVersion %s",
            "listed" if first else "relisted",
            res.plural,
            len(items),
            rv,
        )
        return rv

    def _convert(self, res: Resource, raw: Any) -> Projection | None:
        if not isinstance(raw, Mapping):
            return None
        try:
            obj = res.convert(raw)
        except (ObjectError, AttributeError, TypeError, ValueError) as exc:
            meta = raw.get("metadata") or {}
            log.warning(
                "kubernetes: skipping %s %s/%s: %s",
                res.kind,
                meta.get("namespace", ""),
                meta.get("name", "?"),
                exc,
            )
            return None
        heap.untrack_records(obj)  # kept by the index for long, and never in a cycle
        return obj

    async def _watch(self, res: Resource, rv: str) -> tuple[str, bool]:
        """Watch from `rv` until the stream ends. Returns the last version and whether any
        event or bookmark arrived."""
        timeout = int(self.timing.watch_timeout * random.uniform(1.0, 1.5)) or 1
        resp = await self._call(
            res,
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
        )
        progressed = False
        try:
            await self._check(resp)
            async for line in watch_lines(resp.content):
                try:
                    event = json.loads(line)
                except ValueError:
                    log.debug("kubernetes: %s: ignoring a non-JSON watch line", res.plural)
                    continue
                if not isinstance(event, dict):
                    continue
                rv = self._apply(res, event, rv)
                progressed = True
        finally:
            resp.release()
        self.resource_versions[res.kind] = rv
        return rv, progressed

    def _apply(self, res: Resource, event: dict[str, Any], rv: str) -> str:
        etype = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            return rv
        if etype == "ERROR":
            code = obj.get("code")
            message = str(obj.get("message") or obj.get("reason") or "")
            if code == 410:
                raise Expired(message)
            raise ApiError(int(code) if isinstance(code, int) else 500, message)
        meta = obj.get("metadata") or {}
        new_rv = str(meta.get("resourceVersion") or rv)
        if etype == "BOOKMARK":
            return new_rv
        if etype in ("ADDED", "MODIFIED"):
            proj = self._convert(res, obj)
            if proj is None:
                return new_rv
            self.builder.upsert(proj)
            if isinstance(proj, Slice) and proj.trigger_time is not None and proj.service:
                self._pending_latency.append((proj.service_key, proj.trigger_time))
        elif etype == "DELETED":
            name = meta.get("name")
            if not isinstance(name, str):
                return new_rv
            namespace = "" if res.kind == "Namespace" else str(meta.get("namespace") or "")
            self.builder.delete(res.kind, namespace, name)
        else:
            return new_rv
        self._schedule_publish()
        return new_rv

    # -- publishing ----------------------------------------------------------------------------
    def _schedule_publish(self) -> None:
        if self._flush is not None:
            return
        # A lone change is published after publish_delay. Under constant churn publishes are
        # spaced by twice their own cost, so building snapshots uses at most a third of the loop.
        t = self.timing
        loop = asyncio.get_running_loop()
        earliest = self._published_at + 2 * self._publish_cost - loop.time()
        delay = min(t.publish_max_delay, max(t.publish_delay, earliest))
        self._flush = loop.call_later(delay, self._flush_now)

    def _flush_now(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        started = time.perf_counter()
        try:
            self._publish()
        except Exception:  # a bug in indexing must not kill the watches; keep the old snapshot
            log.exception("kubernetes: publishing a new index failed")
            return
        finally:
            self._publish_cost = time.perf_counter() - started
            self._published_at = asyncio.get_running_loop().time()
        pending, self._pending_latency = self._pending_latency, []
        if pending:
            now = time.time()
            services = self.builder.current.services
            for key, trigger in pending:
                svc = services.get(key)
                # As CoreDNS: only headless services' DNS depends on endpoints.
                if svc is not None and svc.headless:
                    self._latency.observe(max(0.0, now - trigger))

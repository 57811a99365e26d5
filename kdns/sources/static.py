"""A cluster snapshot file: ordinary Kubernetes objects in YAML or JSON, reloaded when it changes.

The file holds Namespaces, Services, EndpointSlices, Pods (and legacy v1 Endpoints), as
multi-document YAML or a `kind: List`, exactly as `kubectl get -o yaml` prints them. Other kinds are
skipped. A file that fails to load keeps the last good snapshot serving, and the error names the
file and line.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdns import heap
from kdns.cluster import objects
from kdns.cluster.index import IndexBuilder
from kdns.cluster.objects import Endpoint, Namespace, ObjectError, Pod, Service, Slice

log = logging.getLogger("kdns.snapshot")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

POLL_INTERVAL = 1.0
COMPACT_MIN_BYTES = 1 << 20  # from this size, `parse_bytes` compacts what it returns
KINDS = {"Namespace", "Service", "EndpointSlice", "Pod", "Endpoints"}


class SnapshotError(Exception):
    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line


@dataclass(slots=True)
class Snapshot:
    namespaces: list[Namespace] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    slices: list[Slice] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)

    def load_into(self, builder: IndexBuilder) -> None:
        builder.replace_all("Namespace", self.namespaces)
        builder.replace_all("Service", self.services)
        builder.replace_all("EndpointSlice", self.slices)
        builder.replace_all("Pod", self.pods)
        for kind in ("Namespace", "Service", "EndpointSlice", "Pod"):
            builder.mark_synced(kind)


def _endpoints_to_slices(obj: Mapping[str, Any]) -> list[Slice]:
    """Legacy v1 Endpoints, as kube-dns read them: one slice per subset."""
    meta = obj.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    name = str(meta.get("name") or "")
    out = []
    for i, subset in enumerate(obj.get("subsets") or ()):
        ports = objects._ports(subset.get("ports"))
        eps = []
        for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in subset.get(key) or ():
                ip = objects._ip(a.get("ip"))
                if ip is None:
                    continue
                ref = a.get("targetRef") or {}
                pod = str(ref.get("name") or "") if ref.get("kind") == "Pod" else ""
                eps.append(
                    Endpoint(
                        (ip,),
                        str(a.get("hostname") or "").lower(),
                        pod.lower() if len(pod) < 64 else "",
                        ready,
                    )
                )
        out.append(Slice(ns, f"endpoints/{name}/{i}", name, "IPv4", tuple(eps), ports, None))
    return out


def _add(snap: Snapshot, obj: Any, file: str, line: int) -> None:
    if not isinstance(obj, Mapping):
        raise SnapshotError(file, line, "expected a Kubernetes object (a mapping with kind)")
    kind = obj.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in obj):
        return  # handled by the caller, which knows each item's line
    if not isinstance(kind, str):
        raise SnapshotError(file, line, "object has no kind")
    if kind not in KINDS:
        log.debug("%s:%d: skipping %s (not used for DNS)", file, line, kind)
        return
    try:
        if kind == "Namespace":
            snap.namespaces.append(objects.namespace_from(obj))
        elif kind == "Service":
            snap.services.append(objects.service_from(obj))
        elif kind == "EndpointSlice":
            snap.slices.append(objects.slice_from(obj))
        elif kind == "Pod":
            snap.pods.append(objects.pod_from(obj))
        else:
            snap.slices.extend(_endpoints_to_slices(obj))
    except (ObjectError, AttributeError, TypeError) as exc:
        raise SnapshotError(file, line, f"invalid {kind}: {exc}") from None


def parse(text: str, file: str) -> Snapshot:
    """Objects of a snapshot file. Errors name the file and the line of the offending object."""
    # The parsed documents are acyclic plain data: with the collector running, each of their
    # millions of allocations would re-trigger collections that scan them all (3x the time).
    with heap.paused(freeze=False):
        return _parse(text, file)


def _parse(text: str, file: str) -> Snapshot:
    docs = _json_docs(text)
    if docs is None:
        try:
            docs = list(yaml.load_all(text, Loader=_Loader))
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, file) from None
    snap = Snapshot()
    try:
        for data in docs:
            if data is None:
                continue
            if isinstance(data, Mapping) and isinstance(data.get("items"), list):
                items = data["items"]
            elif isinstance(data, list):
                items = data
            else:
                items = [data]
            for item in items:
                _add(snap, item, file, 0)
    except SnapshotError:
        del docs, snap
        return _parse_located(text, file)  # the slow walk that knows every object's line
    return snap


def _json_docs(text: str) -> list[Any] | None:
    """The document of a JSON file (`kubectl get -o json`), or None to read it as YAML.

    JSON is YAML, but libyaml takes seconds on the single multi-megabyte line `json.dumps`
    writes, where the json module takes a fraction of one. Anything json rejects goes through
    the YAML path, which also knows the line of an error.
    """
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return [json.loads(text)]
    except ValueError:
        return None


def parse_bytes(raw: bytes, file: str) -> Snapshot:
    """`parse` for a file's content; a big file's objects come back compacted (see below).

    Parsing leaves the surviving projections scattered among millions of freed parser objects;
    pymalloc returns an arena to the OS only when all of it is free, so the process would stay
    at its loading peak (300+ MiB for 5000 Services where the projections need ~20 MiB).
    Serialising the survivors into one buffer, dropping every parsed object, and rebuilding
    from the buffer lets those arenas go and packs the projections into fresh ones.
    """
    snap = parse(raw.decode(errors="replace"), file)
    if len(raw) < COMPACT_MIN_BYTES:
        return snap
    blob = pickle.dumps(snap, protocol=pickle.HIGHEST_PROTOCOL)
    del snap  # the only reference: the parse's objects all die here
    _return_memory()
    compact: Snapshot = pickle.loads(blob)  # our own objects, serialised just above
    return compact


def _yaml_error(exc: yaml.YAMLError, file: str) -> SnapshotError:
    """The parser's complaint, at the line it points to when it points to one."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        return SnapshotError(file, line, f"invalid YAML: {exc.problem or exc}")
    return SnapshotError(file, 0, f"invalid YAML: {exc}")


def _parse_located(text: str, file: str) -> Snapshot:
    snap = Snapshot()
    # libyaml's loader when PyYAML has it: several times faster and far lighter on big files.
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            line = node.start_mark.line + 1
            if data is None:
                continue
            if isinstance(data, Mapping) and isinstance(data.get("items"), list):
                item_nodes = _items_nodes(node)
                for i, item in enumerate(data["items"]):
                    item_line = item_nodes[i].start_mark.line + 1 if i < len(item_nodes) else line
                    _add(snap, item, file, item_line)
            elif isinstance(data, list):
                for i, item in enumerate(data):
                    item_line = node.value[i].start_mark.line + 1
                    _add(snap, item, file, item_line)
            else:
                _add(snap, data, file, line)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file) from None
    finally:
        loader.dispose()
    return snap


def _items_nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.value == "items"
                and isinstance(value, yaml.SequenceNode)
            ):
                return list(value.value)
    return []


def load(path: str | Path) -> Snapshot:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SnapshotError(str(p), 0, f"cannot read snapshot: {exc.strerror}") from None
    return parse_bytes(raw, str(p))


def _return_memory() -> None:
    """Hand the parser's garbage back to the OS: a big file's node graph is freed at once, and
    without a trim glibc keeps those pages, so the process would stay at its loading peak."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


class StaticSource:
    """Serves a snapshot file and reloads it atomically when its content changes."""

    def __init__(
        self,
        path: str | Path,
        builder: IndexBuilder,
        publish: Callable[[], None],
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self.builder = builder
        self.publish = publish
        self.poll_interval = poll_interval
        self._digest = ""
        self._stat: tuple[int, int, int, int] | None = None
        self.last_error: str = ""

    def load_once(self) -> bool:
        """Load the file if it changed. Returns True when a new snapshot was published."""
        try:
            st = self.path.stat()
            # Reading and hashing a large file every second would stall queries for
            # milliseconds: look at the content only when its stat changed.
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if stamp == self._stat:
                return False
            raw = self.path.read_bytes()
            self._stat = stamp
        except OSError as exc:
            self._stat = None
            self._fail(f"{self.path}:0: cannot read snapshot: {exc.strerror}")
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest:
            return False
        try:
            snap = parse_bytes(raw, str(self.path))
        except SnapshotError as exc:
            self._digest = digest  # do not log the same broken content every second
            self._fail(str(exc))
            return False
        self._digest = digest
        self.last_error = ""
        snap.load_into(self.builder)
        self.publish()
        # The index now holds objects for as long as this snapshot serves: keep the cyclic GC
        # from walking them all again on every full collection (tens of ms at 100k endpoints).
        heap.freeze_young()
        log.info(
            "loaded snapshot %s: %d services, %d endpointslices, %d pods, %d namespaces",
            self.path,
            len(snap.services),
            len(snap.slices),
            len(snap.pods),
            len(snap.namespaces),
        )
        return True

    def _fail(self, message: str) -> None:
        self.last_error = message
        if self.builder.synced:
            log.error("%s (still serving the last good snapshot)", message)
        else:
            log.error("%s", message)

    async def run(self) -> None:
        while True:
            self.load_once()
            await asyncio.sleep(self.poll_interval)

"""A cluster snapshot file: ordinary Kubernetes objects in YAML or JSON, reloaded when it changes.

The file holds Namespaces, Services, EndpointSlices, Pods (and legacy v1 Endpoints, and
ServiceImports for `multicluster`), as
multi-document YAML or a `kind: List`, exactly as `kubectl get -o yaml` prints them. Other kinds are
skipped. Mistakes in the objects (kdns.sources.schema) are reported at their lines, all in one
pass: warnings leave the file serving, errors refuse it and keep the last good snapshot serving.
See docs/snapshot.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from kdns import heap
from kdns.cluster import objects
from kdns.cluster.index import IndexBuilder
from kdns.cluster.objects import (
    Endpoint,
    Namespace,
    ObjectError,
    Pod,
    Service,
    ServiceImport,
    Slice,
)
from kdns.sources import schema

log = logging.getLogger("kdns.snapshot")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

POLL_INTERVAL = 1.0
COMPACT_MIN_BYTES = 1 << 20  # from this size, `parse_bytes` compacts what it returns
KINDS = frozenset(schema.READ_KINDS)


class SnapshotError(Exception):
    """A snapshot that cannot be served: each error as `file:line: message` (`file: ...` when
    no line applies, as for a file that cannot be read)."""

    def __init__(
        self,
        file: str,
        line: int,
        message: str,
        errors: Sequence[str] = (),
        warnings: Sequence[str] = (),
    ) -> None:
        self.errors = tuple(errors) or (f"{_where(file, line)}: {message}",)
        self.warnings = tuple(warnings)  # found in the same pass, next to the errors
        super().__init__("\n".join(self.errors))
        self.file = file
        self.line = line


def _where(file: str, line: int) -> str:
    return f"{file}:{line}" if line > 0 else file


@dataclass(slots=True)
class Snapshot:
    namespaces: list[Namespace] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    slices: list[Slice] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    imports: list[ServiceImport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # `file:line: message`, served anyway

    def load_into(self, builder: IndexBuilder) -> None:
        for kind_objects in (self.namespaces, self.services, self.slices, self.pods, self.imports):
            for obj in kind_objects:
                heap.untrack_records(obj)  # kept by the index for long, and never in a cycle
        builder.replace_all("Namespace", self.namespaces)
        builder.replace_all("Service", self.services)
        builder.replace_all("EndpointSlice", self.slices)
        builder.replace_all("Pod", self.pods)
        builder.replace_all("ServiceImport", self.imports)
        for kind in ("Namespace", "Service", "EndpointSlice", "Pod", "ServiceImport"):
            builder.mark_synced(kind)

    def summary(self) -> str:
        imports = f", {len(self.imports)} serviceimports" if self.imports else ""
        return (
            f"{len(self.services)} services, {len(self.slices)} endpointslices, "
            f"{len(self.pods)} pods, {len(self.namespaces)} namespaces{imports}"
        )


@dataclass(frozen=True, slots=True)
class _Found:
    """A problem of one object, located by its document and the path from that document."""

    doc: int
    path: schema.Path
    message: str
    error: bool


def _endpoints_to_slices(obj: Mapping[str, Any]) -> list[Slice]:
    """Legacy v1 Endpoints, as kube-dns read them: one slice per subset."""
    meta = obj.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    name = str(meta.get("name") or "")
    out = []
    key = (ns, name)  # one tuple shared by every record of the object
    for i, subset in enumerate(obj.get("subsets") or ()):
        ports = objects._ports(subset.get("ports"))
        eps: list[Endpoint] = []
        for ready, field_name in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in subset.get(field_name) or ():
                ip = objects._ip(a.get("ip"))
                if ip is None:
                    continue
                ref = a.get("targetRef") or {}
                pod = str(ref.get("name") or "") if ref.get("kind") == "Pod" else ""
                eps += objects.endpoints(
                    key,
                    ports,
                    (ip,),
                    hostname=str(a.get("hostname") or "").lower(),
                    pod_name=pod.lower() if len(pod) < 64 else "",
                    ready=ready,
                )
        out.append(Slice(ns, f"endpoints/{name}/{i}", name, "IPv4", tuple(eps), ports, None))
    return out


def _add(snap: Snapshot, obj: Any, doc: int, where: schema.Path, found: list[_Found]) -> None:
    if not isinstance(obj, Mapping):
        found.append(_Found(doc, where, "expected a Kubernetes object (a mapping with kind)", True))
        return
    kind = obj.get("kind")
    if not isinstance(kind, str):
        found.append(_Found(doc, where, "object has no kind", True))
        return
    if kind not in KINDS:
        problem = schema.kind_problem(kind)
        if problem is not None:
            found.append(_Found(doc, (*where, "kind"), problem, False))
        return
    problems = schema.check(kind, obj)
    found.extend(_Found(doc, (*where, *p.path), p.message, p.error) for p in problems)
    if any(p.error for p in problems):
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
        elif kind == "ServiceImport":
            snap.imports.append(objects.service_import_from(obj))
        else:
            snap.slices.extend(_endpoints_to_slices(obj))
    except (ObjectError, AttributeError, TypeError) as exc:
        found.append(_Found(doc, where, f"invalid {schema.label_of(kind, obj)}: {exc}", True))


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
    found: list[_Found] = []
    for d, data in enumerate(docs):
        if data is None:
            continue
        if isinstance(data, Mapping) and isinstance(data.get("items"), list):
            for i, item in enumerate(data["items"]):
                _add(snap, item, d, ("items", i), found)
        elif isinstance(data, list):
            for i, item in enumerate(data):
                _add(snap, item, d, (i,), found)
        else:
            _add(snap, data, d, (), found)
    del docs
    if found:
        _report(snap, found, text, file)
    return snap


def _report(snap: Snapshot, found: list[_Found], text: str, file: str) -> None:
    """Put each problem at its line; raise SnapshotError for errors, keep warnings in `snap`."""
    lines = _lines(text, [(f.doc, f.path) for f in found])
    located = sorted(zip(lines, found, strict=True), key=lambda x: x[0])
    errors = [(line, f"{_where(file, line)}: {f.message}") for line, f in located if f.error]
    warnings = [f"{_where(file, line)}: {f.message}" for line, f in located if not f.error]
    if errors:
        raise SnapshotError(file, errors[0][0], "", [text for _, text in errors], warnings)
    snap.warnings.extend(warnings)


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

    Each object is its own pickle: unpickling keeps every intermediate (each record's state or
    constructor arguments) until its pickle ends, and a single pickle of the whole snapshot
    would leave those freed among the rebuilt objects at the end (~15 MiB of holes at 100k
    endpoints). What separate objects shared (a JSON file's repeated label names) is then held
    once per object, far less than those holes; zone names, interned at parse, are interned
    again as endpoints unpickle.
    """
    snap = parse(raw.decode(errors="replace"), file)
    if len(raw) < COMPACT_MIN_BYTES:
        return snap
    buf = io.BytesIO()
    counts = {f.name: _dump_each(getattr(snap, f.name), buf) for f in fields(snap)}
    del snap  # the only reference: the parse's objects all die here
    heap.give_back()
    buf.seek(0)
    # Our own objects, serialised just above.
    return Snapshot(**{name: [pickle.load(buf) for _ in range(n)] for name, n in counts.items()})


def _dump_each(items: list[Any], buf: io.BytesIO) -> int:
    for obj in items:
        pickle.dump(obj, buf, protocol=pickle.HIGHEST_PROTOCOL)
    return len(items)


def _yaml_error(exc: yaml.YAMLError, file: str) -> SnapshotError:
    """The parser's complaint, at the line it points to when it points to one."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        return SnapshotError(file, line, f"invalid YAML: {exc.problem or exc}")
    return SnapshotError(file, 0, f"invalid YAML: {exc}")


def _lines(text: str, wanted: list[tuple[int, schema.Path]]) -> list[int]:
    """The line of each (document, path), from the YAML node tree (0 where none is known).

    Only a file with problems pays for the node tree: the fast load keeps no positions.
    """
    roots: list[yaml.Node | None] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            roots.append(loader.get_node())
    except yaml.YAMLError:
        pass  # JSON that YAML reads differently: the problems are reported without a line
    finally:
        loader.dispose()
    return [_line(roots[d], path) if d < len(roots) else 0 for d, path in wanted]


def _line(node: yaml.Node | None, path: schema.Path) -> int:
    if node is None:
        return 0
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return line
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load(path: str | Path) -> Snapshot:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SnapshotError(str(p), 0, f"cannot read snapshot: {exc.strerror}") from None
    return parse_bytes(raw, str(p))


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
            self._fail((f"{self.path}: cannot read snapshot: {exc.strerror}",))
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest:
            return False
        try:
            snap = parse_bytes(raw, str(self.path))
        except SnapshotError as exc:
            self._digest = digest  # do not log the same broken content every second
            for warning in exc.warnings:
                log.warning("%s", warning)
            self._fail(exc.errors)
            return False
        self._digest = digest
        self.last_error = ""
        snap.load_into(self.builder)
        self.publish()
        # The index now holds objects for as long as this snapshot serves: keep the cyclic GC
        # from walking them all again on every full collection (tens of ms at 100k endpoints).
        heap.freeze_young()
        for warning in snap.warnings:
            log.warning("%s", warning)
        log.info("loaded snapshot %s: %s", self.path, snap.summary())
        return True

    def _fail(self, errors: Sequence[str]) -> None:
        message = "\n".join(errors)
        if message == self.last_error:
            return  # a file that stays missing or broken is said once, not every poll
        self.last_error = message
        for error in errors:
            log.error("%s", error)
        if self.builder.synced:
            log.error("%s: still serving the last good snapshot", self.path)

    async def run(self) -> None:
        while True:
            self.load_once()
            await asyncio.sleep(self.poll_interval)

    async def close(self) -> None:
        """Nothing to release: the file is read whole at each load."""

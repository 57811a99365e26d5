"""IndexBuilder: incremental publishes equal a from-scratch build, and snapshots never change."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.objects import Endpoint, Namespace, Pod, Port, Service, Slice

NAMESPACES = ("a", "b")
NAMES = ("s0", "s1", "s2")
IPS = tuple(f"10.0.0.{i}" for i in range(5))
PORTS = (Port("http", 80, "tcp"),)

services = st.builds(
    lambda ns, name, cip, pnr: Service(
        ns, name, "ClusterIP", (cip,) if cip else (), cip is None, "", PORTS, pnr, ()
    ),
    st.sampled_from(NAMESPACES),
    st.sampled_from(NAMES),
    st.one_of(st.none(), st.sampled_from(IPS)),
    st.booleans(),
)
slices = st.builds(
    lambda ns, name, svc, eps: Slice(ns, f"{svc}-{name}", svc, "IPv4", tuple(eps), PORTS, None),
    st.sampled_from(NAMESPACES),
    st.sampled_from(("x", "y")),
    st.sampled_from(NAMES),
    st.lists(
        st.builds(
            lambda ip, host, ready: Endpoint((ip,), host, "", ready),
            st.sampled_from(IPS),
            st.sampled_from(("", "h")),
            st.booleans(),
        ),
        max_size=3,
    ),
)
pods = st.builds(
    lambda ns, name, ip, term: Pod(ns, name, (ip,), term),
    st.sampled_from(NAMESPACES),
    st.sampled_from(NAMES),
    st.sampled_from(IPS),
    st.booleans(),
)
namespaces = st.builds(lambda name: Namespace(name, ()), st.sampled_from(NAMESPACES))
kinds = st.sampled_from(("Service", "EndpointSlice", "Pod", "Namespace"))
ops = st.one_of(
    st.tuples(st.just("upsert"), st.one_of(services, slices, pods, namespaces)),
    st.tuples(
        st.just("delete"),
        st.tuples(kinds, st.sampled_from(NAMESPACES), st.sampled_from((*NAMES, "s0-x", "s1-y"))),
    ),
    st.tuples(st.just("publish"), st.none()),
)


def view(index: ClusterIndex) -> dict[str, object]:
    """Plain, order-insensitive copy of what lookups read (owner order depends on history)."""

    def owners(m: Mapping[str, tuple[object, ...]]) -> dict[str, list[str]]:
        return {k: sorted(map(repr, v)) for k, v in m.items()}

    return {
        "services": dict(index.services),
        "addresses": dict(index.addresses),
        "namespaces": dict(index.namespaces),
        "service_namespaces": index.service_namespaces,
        "pods_by_ip": owners(index.pods_by_ip),
        "cluster_ip_owners": owners(index.cluster_ip_owners),
        "endpoint_ip_owners": owners(index.endpoint_ip_owners),
    }


def from_scratch(objects: dict[tuple[str, str, str], object]) -> ClusterIndex:
    builder = IndexBuilder()
    for obj in objects.values():
        builder.upsert(obj)  # type: ignore[arg-type]
    return builder.publish()


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=40))
def test_incremental_publishes_match_a_full_rebuild(steps: list[tuple[str, object]]) -> None:
    builder = IndexBuilder()
    live: dict[tuple[str, str, str], object] = {}  # (kind, namespace, name) -> object
    published: list[tuple[ClusterIndex, dict[str, object]]] = []
    for op, arg in [*steps, ("publish", None)]:
        if op == "upsert":
            kind = type(arg).__name__
            kind = {"Slice": "EndpointSlice"}.get(kind, kind)
            ns = "" if isinstance(arg, Namespace) else arg.namespace  # type: ignore[attr-defined]
            live[(kind, ns, arg.name)] = arg  # type: ignore[attr-defined]
            builder.upsert(arg)  # type: ignore[arg-type]
        elif op == "delete":
            kind, ns, name = arg  # type: ignore[misc]
            if kind == "Namespace":
                ns, name = "", ns
            live.pop((kind, "" if kind == "Namespace" else ns, name), None)
            builder.delete(kind, ns, name)
        else:
            snapshot = builder.publish()
            expected = view(from_scratch(live))
            assert view(snapshot) == expected
            published.append((snapshot, expected))
    for snapshot, seen in published:
        assert view(snapshot) == seen  # later changes never reach an earlier snapshot


def test_publish_without_changes_returns_the_same_snapshot() -> None:
    builder = IndexBuilder()
    builder.upsert(Service("a", "s", "ClusterIP", ("10.0.0.1",), False, "", PORTS, False, ()))
    first = builder.publish()
    assert builder.publish() is first
    builder.delete("Service", "a", "s")
    second = builder.publish()
    assert ("a", "s") in first.services and ("a", "s") not in second.services
    assert first.cluster_ip_owners["10.0.0.1"] == (("a", "s"),)
    assert "10.0.0.1" not in second.cluster_ip_owners
    assert first.service_namespaces == {"a"} and second.service_namespaces == frozenset()

"""IndexBuilder: incremental publishes equal a from-scratch build, and snapshots never change."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from kdns.cluster.index import ClusterIndex, IndexBuilder
from kdns.cluster.objects import Namespace, Pod, Port, Service, Slice, endpoints

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
    lambda ns, name, svc, eps: Slice(
        ns,
        f"{svc}-{name}",
        svc,
        "IPv4",
        tuple(
            r
            for ips, host, ready, zone in eps
            for r in endpoints((ns, svc), PORTS, ips, host, "", ready, zone)
        ),
        PORTS,
        None,
    ),
    st.sampled_from(NAMESPACES),
    st.sampled_from(("x", "y")),
    st.sampled_from(NAMES),
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(IPS), min_size=1, max_size=2),  # one endpoint, its addresses
            st.sampled_from(("", "h")),
            st.booleans(),
            st.sampled_from(("", "z1", "z2")),
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
        "endpoint_ip_owners": owners({ip: index.ip_owners(ip) for ip in index.endpoint_ip_owners}),
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


def test_one_record_per_endpoint_address_serves_every_map() -> None:
    """The slice's records are what the index publishes, by service and by IP: no copies."""
    builder = IndexBuilder()
    builder.upsert(Service("a", "h", "ClusterIP", (), True, "", PORTS, False, ()))
    records = (
        *endpoints(("a", "h"), PORTS, ("10.0.0.1", "10.0.0.2"), hostname="web-0", zone="z1"),
        *endpoints(("a", "h"), PORTS, ("10.0.0.3",), ready=False),
    )
    sl = Slice("a", "h-x", "h", "IPv4", records, PORTS, None)
    builder.upsert(sl)
    index = builder.publish()
    assert index.addresses[("a", "h")] == records[:2]
    assert all(x is y for x, y in zip(index.addresses[("a", "h")], records, strict=False))
    assert index.ip_owners("10.0.0.2")[0] is records[1]
    assert records[0].service_key is records[2].service_key  # one key per slice
    assert "10.0.0.3" not in index.endpoint_ip_owners  # not ready, not published


def test_only_dns_relevant_slice_changes_re_version_the_service() -> None:
    builder = IndexBuilder()
    builder.upsert(Service("a", "h", "ClusterIP", (), True, "", PORTS, True, ()))

    def slice_with(ready: bool, zone: str) -> Slice:
        records = tuple(endpoints(("a", "h"), PORTS, ("10.0.0.1",), ready=ready, zone=zone))
        return Slice("a", "h-x", "h", "IPv4", records, PORTS, None)

    builder.upsert(slice_with(True, "z1"))
    first = builder.publish()
    builder.upsert(slice_with(True, "z1"))  # an equal object: nothing to publish
    assert builder.publish() is first
    for ready, zone in ((False, "z1"), (False, "z2")):  # publishNotReadyAddresses: still listed
        before = builder.current
        builder.upsert(slice_with(ready, zone))
        after = builder.publish()
        assert after.versions[("a", "h")] > before.versions[("a", "h")]
        assert [(a.ready, a.zone) for a in after.addresses[("a", "h")]] == [(ready, zone)]

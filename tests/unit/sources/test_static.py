"""Snapshot file parsing: JSON and YAML give the same objects, big files come back compacted."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from kdns.sources import static


def cluster(services: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {}}]
    items[0]["metadata"]["name"] = "bench"
    for i in range(services):
        name = f"svc-{i}"
        ip = f"10.96.{i // 250}.{i % 250 + 1}"
        items.append(
            {
                "kind": "Service",
                "metadata": {"name": name, "namespace": "bench", "labels": {"app": name}},
                "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]},
            }
        )
        items.append(
            {
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-x",
                    "namespace": "bench",
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [f"172.16.{i // 250}.{i % 250 + j}"],
                        "hostname": f"h{j}",
                        "zone": f"zone-{j % 2}",
                    }
                    for j in range(3)
                ],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}


def test_json_and_yaml_files_give_the_same_objects() -> None:
    data = cluster(20)
    from_json = static.parse(json.dumps(data), "c.json")
    from_yaml = static.parse(yaml.safe_dump(data), "c.yaml")
    assert from_json == from_yaml
    assert len(from_json.services) == 20 and len(from_json.slices) == 20


def test_text_that_is_not_strict_json_is_read_as_yaml() -> None:
    # Flow-style YAML starts like JSON but json.loads rejects it (unquoted keys, comments).
    text = "{kind: List, items: [{kind: Namespace, metadata: {name: dev}}]}  # flow style\n"
    snap = static.parse(text, "c.yaml")
    assert [ns.name for ns in snap.namespaces] == ["dev"]


def test_broken_json_is_reported_with_its_line() -> None:
    text = '{"kind": "List",\n "items": [\n  {"kind": "Service", "metadata": {"name": "a"}\n'
    with pytest.raises(static.SnapshotError) as err:
        static.parse(text, "c.json")
    assert str(err.value).startswith("c.json:")
    assert err.value.line > 1


def test_an_invalid_object_in_json_is_reported_with_its_line() -> None:
    text = json.dumps(
        {"kind": "List", "items": [{"kind": "Namespace", "metadata": {"name": "a"}}, {"kind": 1}]},
        indent=1,
    )
    with pytest.raises(static.SnapshotError, match="object has no kind") as err:
        static.parse(text, "c.json")
    second_item = [i for i, line in enumerate(text.splitlines()) if line == "  {"][1]
    assert err.value.line == second_item + 1


def test_a_big_file_comes_back_compacted_and_equal() -> None:
    data = cluster(2000)
    raw = json.dumps(data).encode()
    assert len(raw) >= static.COMPACT_MIN_BYTES  # the compaction path is the one under test
    compacted = static.parse_bytes(raw, "big.json")
    assert compacted == static.parse(raw.decode(), "big.json")
    assert len(compacted.services) == 2000
    records = [e for s in compacted.slices for e in s.endpoints]
    # Still one zone string per zone across slices, one key and ports tuple per slice.
    assert len({id(e.zone) for e in records}) == 2
    for sl in compacted.slices:
        assert all(e.service_key is sl.endpoints[0].service_key for e in sl.endpoints)
        assert all(e.ports is sl.ports for e in sl.endpoints)


def test_a_small_file_is_parsed_as_is() -> None:
    raw = yaml.safe_dump(cluster(3)).encode()
    assert len(raw) < static.COMPACT_MIN_BYTES
    assert static.parse_bytes(raw, "small.yaml") == static.parse(raw.decode(), "small.yaml")

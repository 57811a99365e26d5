"""How `--pod` tells a live pod from a file, and what of a manifest reaches the kubelet rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdns.cluster import poddns
from kdns.diagnose import pods


@pytest.mark.parametrize(
    ("text", "live"),
    [
        ("shop/web-7d9c5b7f4-x2x9q", True),
        ("kube-system/coredns-abc", True),
        ("web.yaml", False),
        ("deploy/web.yaml", False),
        ("deploy/web.yml", False),
        ("deploy/web.json", False),
        ("a/b/c", False),
        ("./web", False),
        ("/web", False),
        ("shop/", False),
    ],
)
def test_live_reference_or_file(text: str, live: bool) -> None:
    assert pods.is_live_reference(text) is live


def test_an_existing_file_is_a_file_even_with_one_slash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "web").write_text("kind: Pod\n")
    assert not pods.is_live_reference("shop/web")


def test_a_pod_template_reaches_the_kubelet_rules() -> None:
    spec = {
        "dnsPolicy": "ClusterFirstWithHostNet",
        "hostNetwork": True,
        "dnsConfig": {
            "nameservers": ["10.0.0.11"],
            "searches": ["my.domain"],
            "options": [{"name": "ndots", "value": "3"}, {"name": "edns0"}],
        },
    }
    found = pods.found_in(
        {"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"template": {"spec": spec}}},
        "data",
        "",
    )
    assert found.pod == poddns.PodDNS(
        "data",
        poddns.CLUSTER_FIRST_WITH_HOST_NET,
        True,
        poddns.DNSConfig(("10.0.0.11",), ("my.domain",), (("ndots", "3"), ("edns0", None))),
    )
    assert found.origin == "StatefulSet data/db" and found.spec_path == ("spec", "template", "spec")


def test_a_namespace_that_contradicts_the_manifest_is_an_error() -> None:
    obj = {"kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": {}}
    with pytest.raises(pods.PodError, match="in namespace 'a', not 'b'"):
        pods.found_in(obj, "b", "")

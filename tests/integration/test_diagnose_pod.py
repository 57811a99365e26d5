"""`kdns diagnose NAME --pod ...` as a user runs it: the resolv.conf the kubelet would write for a
real manifest (or a live pod read through the fake API server with the real kubernetes-asyncio
client), the walk over it against the bundled example cluster, and one line for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.diagnose import diagnose, diagnose_json
from tests.support.fakeapi import FakeApiServer

DEPLOYMENT = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: web, image: nginx}]
      dnsConfig:
        searches: [corp.example]
        options:
        - {name: single-request-reopen}
        - {name: timeout, value: "2"}
"""

CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          dnsPolicy: ClusterFirstWithHostNet
          hostNetwork: true
          containers: [{name: report, image: busybox}]
"""

HOST_NETWORK_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: kube-system}
spec:
  hostNetwork: true
  containers: [{name: agent, image: agent}]
"""

NODE = "nameserver 192.0.2.53\nsearch ec2.internal.\noptions ndots:2 rotate\n"


@pytest.fixture
def node(tmp_path: Path) -> str:
    path = tmp_path / "node-resolv.conf"
    path.write_text(NODE)
    return str(path)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_a_deployment_gets_the_cluster_list_the_node_list_and_its_dns_config(
    tmp_path: Path, node: str
) -> None:
    pod = write(tmp_path, "web.yaml", DEPLOYMENT)
    doc = await diagnose_json("api.github.com", "--pod", pod, "--node-resolv-conf", node)
    assert doc["resolv_conf"] == {
        "nameservers": ["10.96.0.10"],
        "search": [
            "shop.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "ec2.internal",
            "corp.example",
        ],
        "options": {"ndots": "5", "single-request-reopen": None, "timeout": "2"},
    }
    assert doc["dns_policy"] == "ClusterFirst" and doc["ndots"] == 5
    assert doc["resolv_conf_from"] == f"Deployment shop/web in {pod}"
    assert doc["queries"][0]["qname"] == "api.github.com.shop.svc.cluster.local."
    assert doc["not_tried"] == ["api.github.com.corp.example.", "api.github.com."]
    # The fix goes in the Deployment's pod template and keeps the options already there.
    ndots = next(a for a in doc["advice"] if a["kind"] == "ndots")
    assert ndots["snippet"] == (
        "spec:\n  template:\n    spec:\n      dnsConfig:\n        options:\n"
        '        - name: ndots\n          value: "2"\n'
        "        - name: single-request-reopen\n"
        '        - name: timeout\n          value: "2"\n'
    )


async def test_text_output_shows_the_resolv_conf_first(tmp_path: Path, node: str) -> None:
    pod = write(tmp_path, "web.yaml", DEPLOYMENT)
    code, out, err = await diagnose("web", "--pod", pod, "--node-resolv-conf", node)
    assert code == 0, err
    assert out.splitlines()[:5] == [
        f"resolv.conf (Deployment shop/web in {pod}, dnsPolicy ClusterFirst):",
        "    nameserver 10.96.0.10",
        "    search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal "
        "corp.example",
        "    options ndots:5 single-request-reopen timeout:2",
        "Lookup of 'web' by getaddrinfo(AF_UNSPEC), glibc 2.36 rules",
    ]
    assert "Result: 10.96.12.34  (from web.shop.svc.cluster.local.)" in out


async def test_host_network_pods(tmp_path: Path, node: str) -> None:
    # ClusterFirst on the host network is Default: the node's file as it is.
    agent = await diagnose_json(
        "web.shop", "--pod", write(tmp_path, "agent.yaml", HOST_NETWORK_POD),
        "--node-resolv-conf", node,
    )  # fmt: skip
    assert agent["dns_policy"] == "Default"
    assert agent["resolv_conf"] == {
        "nameservers": ["192.0.2.53"],
        "search": ["ec2.internal"],
        "options": {"ndots": "2", "rotate": None},
    }
    assert agent["ndots"] == 2
    assert agent["queries"][0]["qname"] == "web.shop.ec2.internal."  # 1 dot < ndots:2
    # ClusterFirstWithHostNet keeps the cluster's list; a CronJob's namespace defaults.
    report = await diagnose_json(
        "web.shop", "--pod", write(tmp_path, "cron.yaml", CRONJOB), "--node-resolv-conf", node,
        "--cluster-dns", "10.96.0.10,10.96.0.11", "--cluster-domain", "k8s.example",
    )  # fmt: skip
    assert report["dns_policy"] == "ClusterFirstWithHostNet"
    assert report["resolv_conf"]["nameservers"] == ["10.96.0.10", "10.96.0.11"]
    assert report["resolv_conf"]["search"][:3] == [
        "default.svc.k8s.example",
        "svc.k8s.example",
        "k8s.example",
    ]
    assert report["resolv_conf_from"].startswith("CronJob default/report in ")


async def test_dns_policy_none_and_the_search_limits(tmp_path: Path, node: str) -> None:
    none = write(
        tmp_path,
        "none.yaml",
        "kind: Pod\nmetadata: {name: p}\nspec:\n  dnsPolicy: None\n"
        "  dnsConfig: {nameservers: [1.1.1.1], options: [{name: ndots, value: '1'}]}\n",
    )
    doc = await diagnose_json("web.shop", "--pod", none, "--node-resolv-conf", node)
    assert doc["resolv_conf"] == {
        "nameservers": ["1.1.1.1"],
        "search": [],
        "options": {"ndots": "1"},
    }
    many = ", ".join(f"d{i}.example" for i in range(31))
    full = write(
        tmp_path,
        "full.yaml",
        f"kind: Pod\nmetadata: {{name: p, namespace: shop}}\nspec:\n"
        f"  dnsConfig: {{searches: [{many}]}}\n",
    )
    doc = await diagnose_json("web.shop", "--pod", full, "--node-resolv-conf", node)
    assert len(doc["resolv_conf"]["search"]) == 32  # 3 cluster + 1 node + 28 of the pod's
    assert doc["resolv_conf"]["search"][-1] == "d27.example"
    assert doc["kubelet_warnings"][0].startswith("Search Line limits were exceeded")
    _, out, _ = await diagnose("web.shop", "--pod", full, "--node-resolv-conf", node)
    assert "  kubelet warning: Search Line limits were exceeded" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kind: Pod\nmetadata: {name: p}\nspec: {dnsPolicy: None}\n",
            "dnsPolicy None needs a dnsConfig",
        ),
        ("kind: Service\nmetadata: {name: s}\n", "no pod template in the file"),
        ("kind: Pod\nspec: {dnsPolicy: Cluster}\n", "dnsPolicy 'Cluster' is not one of"),
        (
            "kind: Pod\nspec:\n  dnsConfig: {options: [{name: ndots, value: 2}]}\n",
            "value must be a string: quote it",
        ),
        ("kind: Pod\nspec: {dnsConfig: {nameservers: [dns.example]}}\n", "valid IP address"),
        ("kind: Pod\nspec: [\n", ":3: expected"),
    ],
)
async def test_bad_manifests_are_one_line_and_exit_1(
    tmp_path: Path, node: str, text: str, message: str
) -> None:
    pod = write(tmp_path, "bad.yaml", text)
    code, out, err = await diagnose("web", "--pod", pod, "--node-resolv-conf", node)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and message in err and pod in err, err


async def test_missing_files_are_one_line_and_exit_1(tmp_path: Path, node: str) -> None:
    missing = str(tmp_path / "nothere.yaml")
    code, _, err = await diagnose("web", "--pod", missing, "--node-resolv-conf", node)
    assert code == 1 and err == f"kdns diagnose: {missing}: No such file or directory\n"
    pod = write(tmp_path, "web.yaml", DEPLOYMENT)
    code, _, err = await diagnose("web", "--pod", pod, "--node-resolv-conf", missing)
    assert code == 1 and err.count("\n") == 1 and "--node-resolv-conf" in err
    code, _, err = await diagnose("web", "--pod", pod, "--cluster-dns", "10.96.0.300")
    assert code == 1 and "'10.96.0.300' is not an IP address" in err
    code, _, err = await diagnose("web", "-n", "shop", "--node-resolv-conf", node)
    assert code == 1 and "--node-resolv-conf goes with --pod" in err
    code, _, err = await diagnose("web", "--resolv-conf", node, "-n", "shop")
    assert code == 1 and "--resolv-conf reads a real file" in err


def kubeconfig(tmp_path: Path, url: str) -> str:
    return write(
        tmp_path,
        "kubeconfig",
        f"""apiVersion: v1
kind: Config
clusters:
- {{name: fake, cluster: {{server: "{url}"}}}}
users:
- {{name: me, user: {{token: "t0k"}}}}
contexts:
- {{name: fake, context: {{cluster: fake, user: me}}}}
current-context: fake
""",
    )


def live_pod() -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": "web-7d9c5b7f4-x2x9q",
            "namespace": "shop",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c5b7f4"}
            ],
        },
        "spec": {
            "containers": [{"name": "web", "image": "nginx"}],
            "dnsPolicy": "ClusterFirst",
            "dnsConfig": {"options": [{"name": "ndots", "value": "3"}]},
        },
        "status": {"phase": "Running", "podIP": "10.244.0.7"},
    }


async def test_a_live_pod_through_the_api(tmp_path: Path, node: str) -> None:
    async with FakeApiServer(token="t0k") as api:
        api.load([live_pod()])
        config = kubeconfig(tmp_path, api.url)
        ref = "shop/web-7d9c5b7f4-x2x9q"
        doc = await diagnose_json(
            "web", "--pod", ref, "--kubeconfig", config, "--node-resolv-conf", node
        )
        assert api.requests[-1].path == "/api/v1/namespaces/shop/pods/web-7d9c5b7f4-x2x9q"
        assert api.requests[-1].headers["Authorization"] == "Bearer t0k"
        assert doc["resolv_conf"]["options"] == {"ndots": "3"}
        assert doc["resolv_conf"]["search"][0] == "shop.svc.cluster.local"
        assert doc["resolv_conf_from"] == (
            "Pod shop/web-7d9c5b7f4-x2x9q (live), owned by ReplicaSet web-7d9c5b7f4"
        )
        assert doc["answer"] == ["10.96.12.34"]
        code, out, err = await diagnose("web", "--pod", "shop/gone", "--kubeconfig", config)
        assert (code, out) == (1, "")
        assert err == 'kdns diagnose: pod shop/gone: HTTP 404: pods "gone" not found\n'
        api.fail("pods", 403, "Forbidden")
        code, _, err = await diagnose("web", "--pod", ref, "--kubeconfig", config)
        assert code == 1 and "HTTP 403" in err and err.count("\n") == 1
    # The API server is gone: still one line.
    code, _, err = await diagnose("web", "--pod", ref, "--kubeconfig", config)
    assert code == 1 and err.count("\n") == 1 and "cannot reach the Kubernetes API" in err

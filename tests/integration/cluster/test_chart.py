"""The Helm chart against the real apiserver: every value set passes server-side validation
(schemas, the Prometheus Operator's CRDs, PodSecurity ``restricted``), the kustomize base too;
and one install -> ModelDeployment Ready -> upgrade -> uninstall cycle with the chart's
operator running from its image on the real node, as the chart's ServiceAccount and RBAC."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import helm as helm_module
from hack.cluster.base import ROOT
from hack.cluster.helm import CHART, Helm, kube_version
from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.onnx_models import tiny_model
from hack.testbed.operator import OperatorProcess
from tests.integration.cluster.test_real_node import infer, ready_version
from tests.support.kube import eventually, get
from tests.support.realnode import on_real_node, running_pods, sha256

pytestmark = pytest.mark.cluster
VALUE_SETS = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "chart-e2e"
OPERATOR = f"{RELEASE}-modelyard-operator"


@pytest.fixture(scope="session")
def monitoring_crds(installed: LocalCluster) -> LocalCluster:
    """The Prometheus Operator's ServiceMonitor, PodMonitor and PrometheusRule CRDs (build.sh)."""
    crds = installed.bin.parent / "crds" / "monitoring.coreos.com"
    installed.kubectl("apply", "--server-side", "-f", str(crds))

    def established(plural: str) -> bool:
        crd = get(installed, "default", "crd", f"{plural}.monitoring.coreos.com")
        conditions = (crd or {}).get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    for plural in ("servicemonitors", "podmonitors", "prometheusrules"):
        eventually(lambda: established(plural), timeout=60, what=f"CRD {plural} established")  # noqa: B023
    return installed


@pytest.fixture
def helm(cluster: LocalCluster, tmp_path: Path) -> Helm:
    return Helm(cluster.bin, cluster.admin_kubeconfig, tmp_path / "helm")


def label_restricted(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted", "--overwrite",
    )  # fmt: skip


def dry_run(cluster: LocalCluster, manifests: str) -> str:
    """Server-side dry run; returns the warnings (PodSecurity's among them), fails on errors."""
    result = cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server",
        "--field-manager=chart-test", "-f", "-", input=manifests, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.name)
def test_every_value_set_passes_the_apiservers_validation(
    monitoring_crds: LocalCluster, namespace: str, helm: Helm, values: Path
) -> None:
    label_restricted(monitoring_crds, namespace)
    rendered = helm("template", "dry", str(CHART), "-n", namespace, "-f", str(values),
                    "--kube-version", kube_version()).stdout  # fmt: skip
    warnings = dry_run(monitoring_crds, rendered)
    assert "Warning" not in warnings


def test_a_pod_spec_outside_restricted_is_flagged_by_the_dry_run(
    installed: LocalCluster, namespace: str, helm: Helm
) -> None:
    """The check above can fail: PodSecurity names what a loosened security context breaks."""
    label_restricted(installed, namespace)
    rendered = helm(
        "template", "dry", str(CHART), "-n", namespace, "--kube-version", kube_version(),
        "--set", "securityContext.allowPrivilegeEscalation=true",
    ).stdout  # fmt: skip
    warnings = dry_run(installed, rendered)
    assert 'would violate PodSecurity "restricted:latest"' in warnings
    assert "allowPrivilegeEscalation" in warnings


def test_the_kustomize_base_passes_the_apiservers_validation(installed: LocalCluster) -> None:
    rendered = installed.kubectl("kustomize", str(ROOT / "manifests")).stdout
    assert "Warning" not in dry_run(installed, rendered)


def lease_holder(cluster: LocalCluster, namespace: str) -> str:
    lease = get(cluster, namespace, "lease", OPERATOR)
    return str((lease or {}).get("spec", {}).get("holderIdentity") or "")


def operator_pods(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    found = get(cluster, namespace, "pods", "-l", "app.kubernetes.io/name=modelyard-operator")
    return [p for p in (found or {}).get("items", [])
            if not p["metadata"].get("deletionTimestamp")]  # fmt: skip


def exists(cluster: LocalCluster, kind: str, name: str) -> bool:
    """A cluster-scoped object exists."""
    result = cluster.kubectl("get", kind, name, "-o", "name", check=False)
    assert result.returncode == 0 or "NotFound" in result.stderr, result.stderr
    return result.returncode == 0


def can_i(cluster: LocalCluster, namespace: str, *args: str) -> str:
    account = f"system:serviceaccount:{namespace}:{OPERATOR}"
    result = cluster.kubectl("auth", "can-i", *args, f"--as={account}", check=False)
    return result.stdout.strip()


@pytest.fixture
def release_namespace(cluster: LocalCluster, operator: OperatorProcess) -> Iterator[str]:
    """A namespace for the release (PodSecurity restricted); the session's operator is stopped
    meanwhile, so the chart's is the only one acting."""
    name = f"chart-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(name)
    label_restricted(cluster, name)
    operator.stop()
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
        operator.start()


def test_install_serve_upgrade_and_uninstall_with_the_charts_operator(
    cluster: LocalCluster,
    restricted_namespace: str,
    release_namespace: str,
    helm: Helm,
    operator_image: str,
    runtime_image: str,
    model_store: tuple[Path, str],
) -> None:
    apiserver = cluster.ports["apiserver"]
    values = helm_module.local_values(apiserver, operator_image, runtime_image,
                                      pin_to_real_node=True)  # fmt: skip
    values_file = helm.values_file(values, "local")
    ns = ["-n", release_namespace]
    try:
        installed = helm("install", RELEASE, str(CHART), *ns, "-f", str(values_file),
                         "--wait", "--timeout=4m")  # fmt: skip
        assert f"rollout status deployment/{OPERATOR}" in installed.stdout  # NOTES
        assert "kubectl get modeldeployments -A" in installed.stdout
        (first,) = operator_pods(cluster, release_namespace)
        eventually(
            lambda: lease_holder(cluster, release_namespace).startswith(first["metadata"]["name"]),
            timeout=60, what="the operator pod leads",
        )  # fmt: skip
        assert can_i(cluster, release_namespace, "patch", "leases", *ns) == "yes"
        assert can_i(cluster, release_namespace, "patch", "leases", "-n", "default") == "no"
        assert can_i(cluster, release_namespace, "list", "secrets", "-A") == "no"

        # A ModelDeployment that names no image is served by the chart's runtime image.
        store, url = model_store
        model = tiny_model(store / "model.onnx")
        manifest = on_real_node("charted", f"{url}/model.onnx", sha256(model), runtime_image, "v1")
        del manifest["spec"]["runtime"]["image"]
        kubectl_ns = ["-n", restricted_namespace]
        cluster.kubectl(*kubectl_ns, "apply", "-f", "-", input=json.dumps(manifest))
        eventually(lambda: ready_version(cluster, restricted_namespace, "charted", "v1"),
                   timeout=180, what="Ready, reconciled by the chart's operator")  # fmt: skip
        (pod,) = running_pods(cluster, restricted_namespace, "charted")
        assert pod["spec"]["containers"][0]["image"] == runtime_image
        assert infer(pod["status"]["podIP"], "charted") == [2.0, 4.0, 6.0, 8.0]
        events = json.loads(cluster.kubectl(*kubectl_ns, "get", "events", "-o", "json").stdout)
        sources = {
            e.get("reportingComponent") or e["source"].get("component")
            for e in events["items"]
            if e["involvedObject"]["kind"] == "ModelDeployment"
        }
        assert sources == {"modelyard-operator"}

        # A changed value rolls the operator: a new pod, which takes the Lease and acts.
        helm("upgrade", RELEASE, str(CHART), *ns, "--reuse-values",
             "--set", "config.logLevel=DEBUG", "--wait", "--timeout=4m")  # fmt: skip

        def replaced() -> bool:
            uids = [p["metadata"]["uid"] for p in operator_pods(cluster, release_namespace)]
            return len(uids) == 1 and uids != [first["metadata"]["uid"]]

        eventually(replaced, timeout=120, what="the old operator pod replaced")
        (second,) = operator_pods(cluster, release_namespace)
        env = {e["name"]: e.get("value") for e in second["spec"]["containers"][0]["env"]}
        assert env["MODELYARD_OPERATOR_LOG_LEVEL"] == "DEBUG"
        eventually(
            lambda: lease_holder(cluster, release_namespace).startswith(second["metadata"]["name"]),
            timeout=60, what="the new pod leads",
        )  # fmt: skip
        cluster.kubectl(*kubectl_ns, "apply", "-f", "-",
                        input=json.dumps(md_manifest("after-upgrade")))  # fmt: skip
        eventually(lambda: ready_version(cluster, restricted_namespace, "after-upgrade", "v1"),
                   timeout=120, what="a new ModelDeployment Ready after the upgrade")  # fmt: skip

        # Uninstall removes the operator and its RBAC; the CRD and the ModelDeployments stay.
        helm("uninstall", RELEASE, *ns, "--wait", "--timeout=2m")
        assert get(cluster, release_namespace, "deployment", OPERATOR) is None
        assert not exists(cluster, "clusterrole", OPERATOR)
        assert exists(cluster, "crd", "modeldeployments.serving.modelyard.io")
        for name in ("charted", "after-upgrade"):
            assert get(cluster, restricted_namespace, "mdep", name) is not None
    finally:
        helm("uninstall", RELEASE, *ns, "--wait", check=False)
        # No operator is left to remove their finalizers: do it here, so that the session's
        # operator, restarted next, finds nothing of this test to work on.
        for name in ("charted", "after-upgrade"):
            cluster.kubectl("-n", restricted_namespace, "patch", "mdep", name, "--type=merge",
                            "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
            cluster.kubectl("-n", restricted_namespace, "delete", "mdep", name, "--wait=false",
                            check=False)  # fmt: skip

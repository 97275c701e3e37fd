"""The operator against the real apiserver, running as its own least-privilege ServiceAccount.

Pods run on kwok's fake node (scheduled, marked Running and Ready); the children, status,
Events, scale subresource, restart and deletion are all real API objects.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess
from tests.support.kube import condition, eventually, get

pytestmark = pytest.mark.cluster

CHILDREN = ("deployment", "service", "poddisruptionbudget")


def apply(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))


def mdep(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    found = get(cluster, namespace, "mdep", name)
    assert found is not None
    return found


def wait_condition(
    cluster: LocalCluster, namespace: str, name: str, *, status: str = "", reason: str = ""
) -> dict[str, Any]:
    """Poll until the Ready condition has ``status`` and/or ``reason``; return the condition."""

    def matches() -> bool:
        found = condition(get(cluster, namespace, "mdep", name), "Ready")
        return (not status or found.get("status") == status) and (
            not reason or found.get("reason") == reason
        )

    eventually(matches, what=f"{name} Ready status={status or '*'} reason={reason or '*'}")
    return condition(get(cluster, namespace, "mdep", name), "Ready")


def wait_ready(cluster: LocalCluster, namespace: str, name: str) -> None:
    wait_condition(cluster, namespace, name, status="True")


def events(cluster: LocalCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    result = cluster.kubectl(
        "-n", namespace, "get", "events", "-o", "json",
        f"--field-selector=involvedObject.kind=ModelDeployment,involvedObject.name={name}",
    )  # fmt: skip
    return list(json.loads(result.stdout)["items"])


def test_apply_creates_children_that_match_and_pods_pass_restricted(
    operator: OperatorProcess, cluster: LocalCluster, restricted_namespace: str
) -> None:
    ns = restricted_namespace
    apply(cluster, ns, md_manifest("iris", replicas=2, sha256="a" * 64))
    wait_ready(cluster, ns, "iris")

    deployment = get(cluster, ns, "deployment", "iris")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert labels["serving.modelyard.io/track"] == "stable"
    assert labels["serving.modelyard.io/model-version"] == "v1"
    assert labels["app.kubernetes.io/managed-by"] == "modelyard-operator"
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelDeployment", "iris", True)
    runtime = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in runtime["env"]}
    assert env["MODELYARD_MODEL_SHA256"] == "a" * 64
    assert env["MODELYARD_REVISION"] == labels["serving.modelyard.io/revision"]
    assert runtime["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert pod["spec"]["initContainers"][0]["args"][:3] == [
        "fetch",
        "--uri",
        "s3://models/iris.onnx",
    ]

    service = get(cluster, ns, "service", "iris")
    assert service is not None
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": 8080, "grpc": 8081}
    pdb = get(cluster, ns, "pdb", "iris")
    assert pdb is not None
    assert pdb["spec"]["minAvailable"] == 1

    # Pods exist, so PodSecurity `restricted` admitted the pod template.
    pods = json.loads(cluster.kubectl("-n", ns, "get", "pods", "-o", "json").stdout)["items"]
    assert len(pods) == 2

    status = mdep(cluster, ns, "iris")["status"]
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == 1
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)
    assert status["stable"]["version"] == "v1"
    assert status["url"] == f"http://iris.{ns}.svc:8080/v2/models/iris"
    assert status["history"][0]["result"] == "Ready"
    assert condition(mdep(cluster, ns, "iris"), "ModelVerified")["reason"] == "DigestMatched"
    assert any(e["reason"] == "Available" for e in events(cluster, ns, "iris"))

    columns = cluster.kubectl("-n", ns, "get", "mdep", "iris").stdout.split("\n")
    names = columns[0].split()
    assert names == [
        "NAME", "VERSION", "PHASE", "READY", "STABLE", "CANARY", "DESIRED", "REPLICAS",
        "AVAILABLE", "AGE",
    ]  # fmt: skip
    # Cells by the header's offsets: empty ones (no canary, no autoscaler) stay in place.
    starts = [columns[0].index(n) for n in names] + [len(columns[1]) + 1]
    cells = dict(
        zip(names, (columns[1][a:b].strip() for a, b in itertools.pairwise(starts)), strict=True)
    )
    shown = ("NAME", "VERSION", "PHASE", "READY", "STABLE", "REPLICAS", "AVAILABLE")
    assert [cells[n] for n in shown] == ["iris", "v1", "Ready", "True", "v1", "2", "2"]
    assert cells["CANARY"] in ("", "<none>")
    assert cells["DESIRED"] in ("", "<none>")  # no autoscaler


def test_kubectl_scale_goes_through_the_scale_subresource(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("scaled"))
    wait_ready(cluster, namespace, "scaled")
    cluster.kubectl("-n", namespace, "scale", "mdep/scaled", "--replicas=3")
    eventually(
        lambda: mdep(cluster, namespace, "scaled")["status"].get("readyReplicas") == 3,
        what="3 ready replicas",
    )
    deployment = get(cluster, namespace, "deployment", "scaled")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 3
    assert mdep(cluster, namespace, "scaled")["spec"]["replicas"] == 3


def test_an_immediate_spec_change_rolls_the_deployment_and_keeps_history(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    immediate = {"rollout": {"strategy": "Immediate"}}
    apply(cluster, namespace, md_manifest("roll", extra_spec=immediate))
    wait_ready(cluster, namespace, "roll")
    first = mdep(cluster, namespace, "roll")["status"]["stable"]["revision"]
    apply(cluster, namespace, md_manifest("roll", version="v2", extra_spec=immediate))
    eventually(
        lambda: mdep(cluster, namespace, "roll")["status"]["stable"]["version"] == "v2",
        what="v2 to become stable",
    )
    status = mdep(cluster, namespace, "roll")["status"]
    assert status["stable"]["revision"] != first
    assert [h["version"] for h in status["history"]] == ["v2", "v1"]
    assert [h["result"] for h in status["history"]] == ["Ready", "Ready"]
    assert get(cluster, namespace, "deployment", "roll-canary") is None
    assert status["observedGeneration"] == 2


def test_missing_secret_becomes_a_condition_and_heals_when_created(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("creds", secret="s3-credentials"))
    ready = wait_condition(cluster, namespace, "creds", reason="SecretNotFound")
    assert "s3-credentials" in ready["message"]
    assert "spec.model.storageSecretRef" in ready["message"]
    assert mdep(cluster, namespace, "creds")["status"]["phase"] in {"Failed", "Degraded"}
    assert any(
        e["reason"] == "SecretNotFound" and e["type"] == "Warning"
        for e in events(cluster, namespace, "creds")
    )
    cluster.kubectl(
        "-n", namespace, "create", "secret", "generic", "s3-credentials",
        "--from-literal=AWS_ACCESS_KEY_ID=a", "--from-literal=AWS_SECRET_ACCESS_KEY=b",
    )  # fmt: skip
    wait_ready(cluster, namespace, "creds")


def test_other_deployments_keep_working_while_one_is_broken(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("broken", secret="absent"))
    apply(cluster, namespace, md_manifest("healthy"))
    wait_ready(cluster, namespace, "healthy")
    assert condition(mdep(cluster, namespace, "broken"), "Ready")["status"] == "False"


def test_delete_removes_every_child(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("gone", autoscaling=True))
    wait_ready(cluster, namespace, "gone")
    assert get(cluster, namespace, "hpa", "gone") is not None
    cluster.kubectl("-n", namespace, "delete", "mdep", "gone", "--wait=true", "--timeout=60s")

    def nothing_left() -> bool:
        kinds = "deployment,replicaset,pod,service,pdb,hpa"
        listed = cluster.kubectl("-n", namespace, "get", kinds, "-o", "name").stdout
        return not listed.strip()

    eventually(nothing_left, what="every child to be garbage-collected")
    assert get(cluster, namespace, "mdep", "gone") is None


def test_dropping_autoscaling_deletes_the_hpa_and_sets_replicas(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("auto", autoscaling=True))
    eventually(lambda: get(cluster, namespace, "hpa", "auto") is not None, what="the HPA")
    hpa = get(cluster, namespace, "hpa", "auto")
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "modelyard_requests_in_flight"
    apply(cluster, namespace, md_manifest("auto", replicas=2))
    eventually(lambda: get(cluster, namespace, "hpa", "auto") is None, what="the HPA to go")
    eventually(
        lambda: (get(cluster, namespace, "deployment", "auto") or {})["spec"]["replicas"] == 2,
        what="replicas 2",
    )


def test_restart_changes_no_child(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("steady", replicas=2))
    wait_ready(cluster, namespace, "steady")

    def versions() -> dict[str, str]:
        out = {}
        for kind in ("mdep", *CHILDREN):
            obj = get(cluster, namespace, kind, "steady")
            assert obj is not None
            out[kind] = obj["metadata"]["resourceVersion"]
        return out

    before = versions()
    operator.stop()
    operator.start()
    assert operator.process is not None
    operator.process.wait_for(rf"reconciled {namespace}/steady ", timeout=60)
    assert versions() == before


def test_operator_metrics_report_reconciles_and_phase(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("observed"))
    wait_ready(cluster, namespace, "observed")
    eventually(
        lambda: (
            operator.metric(
                "modelyard_rollout_phase", namespace=namespace, name="observed", phase="Ready"
            )
            == 1
        ),
        what="rollout phase Ready = 1",
    )
    assert operator.metric("modelyard_operator_reconcile_total", result="success") >= 1
    text = operator.metrics()
    assert "modelyard_operator_reconcile_duration_seconds_bucket" in text


OPERATOR_SA = "system:serviceaccount:modelyard-system:modelyard-operator"


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("patch", "deployments.apps", True),
        ("watch", "pods", True),
        ("patch", "modeldeployments.serving.modelyard.io/status", True),
        ("get", "secrets", True),
        ("list", "secrets", False),
        ("watch", "secrets", False),
        ("delete", "deployments.apps", True),  # a canary's Deployment goes when it ends
        ("delete", "services", False),
        ("watch", "horizontalpodautoscalers.autoscaling", True),  # status.autoscaling
        ("create", "pods", False),
        ("update", "modeldeployments.serving.modelyard.io", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", False),
    ],
)
def test_operator_role_is_least_privilege(
    installed: LocalCluster, verb: str, resource: str, allowed: bool
) -> None:
    subresource = ""
    if "/" in resource:
        resource, subresource = resource.split("/")
    args = ["auth", "can-i", verb, resource, f"--as={OPERATOR_SA}", "-A"]
    if subresource:
        args.append(f"--subresource={subresource}")
    result = installed.kubectl(*args, check=False)
    assert result.stdout.strip() == ("yes" if allowed else "no"), (verb, resource, result.stderr)


def test_a_child_the_apiserver_rejects_becomes_a_condition_not_a_retry_loop(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    bad_toleration = {"scheduling": {"tolerations": [{"key": "x", "operator": "Sometimes"}]}}
    apply(cluster, namespace, md_manifest("invalid", extra_spec=bad_toleration))
    ready = wait_condition(cluster, namespace, "invalid", reason="InvalidSpec")
    assert "tolerations" in ready["message"]
    assert mdep(cluster, namespace, "invalid")["status"]["phase"] == "Failed"
    # Fixing the spec clears it.
    apply(cluster, namespace, md_manifest("invalid"))
    wait_ready(cluster, namespace, "invalid")

"""Tier D: ModelDeployments served by real pods (``Dockerfile.runtime``, a real kubelet and
containerd), driven by the operator running as its ServiceAccount.

The model store is an HTTP server on the node's address, which pods reach over the bridge; the
test reaches each pod on its own IP, as a client inside a cluster would.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from hack.cluster import node
from hack.cluster.localcluster import LocalCluster
from hack.testbed.metrics_text import value
from hack.testbed.onnx_models import tiny_model
from hack.testbed.operator import OperatorProcess
from tests.support.kube import condition, eventually, get
from tests.support.realnode import on_real_node, running_pods, sha256

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ROW = [1.0, 2.0, 3.0, 4.0]


def infer(pod_ip: str, model: str, timeout: float = 10) -> list[float]:
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
    request = urllib.request.Request(
        f"http://{pod_ip}:8080/v2/models/{model}/infer", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=timeout) as response:
        outputs = {o["name"]: o["data"] for o in json.load(response)["outputs"]}
    return [float(v) for v in outputs["double"]]


def ready_version(cluster: LocalCluster, namespace: str, name: str, version: str) -> bool:
    md = get(cluster, namespace, "modeldeployment", name)
    status = (md or {}).get("status", {})
    return (
        condition(md, "Ready").get("status") == "True"
        and status.get("stable", {}).get("version") == version
        and status.get("observedGeneration") == md["metadata"]["generation"]  # type: ignore[index]
    )


def test_real_pod_serves_and_rolls_to_a_new_version(
    cluster: LocalCluster,
    namespace: str,
    operator: OperatorProcess,
    runtime_image: str,
    model_store: tuple[Path, str],
) -> None:
    store, url = model_store
    v1, v2 = tiny_model(store / "v1.onnx", 2.0), tiny_model(store / "v2.onnx", 3.0)
    manifest = on_real_node("real", f"{url}/v1.onnx", sha256(v1), runtime_image, "v1")
    manifest["spec"]["resources"]["limits"] = {"cpu": "1"}
    manifest["spec"]["rollout"] = {"strategy": "Immediate"}  # a plain rolling update here
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))

    eventually(lambda: ready_version(cluster, namespace, "real", "v1"), timeout=180,
               what="v1 Ready on a real pod")  # fmt: skip
    (pod,) = running_pods(cluster, namespace, "real")
    assert pod["spec"]["nodeName"] == node.NODE_NAME
    first_ip = pod["status"]["podIP"]
    assert infer(first_ip, "real") == [2 * v for v in ROW]
    logs = cluster.kubectl("-n", namespace, "logs", pod["metadata"]["name"]).stdout
    assert "intra-op threads: 1\n" in logs  # read from the container's CPU limit

    manifest["spec"]["model"].update(uri=f"{url}/v2.onnx", sha256=sha256(v2), version="v2")
    manifest["spec"]["runtime"]["processes"] = 2  # and the read-only container takes two
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))
    eventually(lambda: ready_version(cluster, namespace, "real", "v2"), timeout=180,
               what="v2 Ready after a rolling update")  # fmt: skip

    def rolled() -> bool:
        deployment = get(cluster, namespace, "deployment", "-l", "app.kubernetes.io/instance=real")
        (item,) = deployment["items"] if deployment else [None]
        status = item["status"] if item else {}
        pods = running_pods(cluster, namespace, "real")
        return (
            status.get("updatedReplicas") == status.get("readyReplicas") == 1
            and status.get("replicas") == 1
            and len(pods) == 1
            and pods[0]["status"]["podIP"] != first_ip
        )

    eventually(rolled, timeout=120, what="the old pod replaced by the new one")
    (pod,) = running_pods(cluster, namespace, "real")
    assert infer(pod["status"]["podIP"], "real") == [3 * v for v in ROW]
    logs = cluster.kubectl("-n", namespace, "logs", pod["metadata"]["name"]).stdout
    assert "started 2 server processes" in logs
    assert logs.count("ready: model 'real' version 'v2'") == 2
    # The Service's ClusterIP, through kube-proxy's rules, reaches the new pod once kube-proxy
    # has synced the new endpoint (it may still point at the old pod just after the rollout).
    service = get(cluster, namespace, "service", "real")
    assert service is not None

    def service_serves_v2() -> bool:
        try:
            return infer(service["spec"]["clusterIP"], "real", timeout=2) == [3 * v for v in ROW]
        except OSError:
            return False

    eventually(service_serves_v2, timeout=60, what="the ClusterIP answering with v2")


def test_real_pod_digest_mismatch_is_reported_by_stage(
    cluster: LocalCluster,
    namespace: str,
    operator: OperatorProcess,
    runtime_image: str,
    model_store: tuple[Path, str],
) -> None:
    store, url = model_store
    tiny_model(store / "model.onnx")
    wrong = "0" * 64
    manifest = on_real_node("bad", f"{url}/model.onnx", wrong, runtime_image, "v1")
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))

    def verified_false() -> bool:
        md = get(cluster, namespace, "modeldeployment", "bad")
        return condition(md, "ModelVerified").get("reason") == "DigestMismatch"

    eventually(verified_false, timeout=90, what="ModelVerified=False DigestMismatch")
    md = get(cluster, namespace, "modeldeployment", "bad")
    message = condition(md, "ModelVerified")["message"]
    assert wrong in message
    assert sha256(store / "model.onnx") in message


def test_operator_image_reconciles_from_a_pod(
    cluster: LocalCluster,
    namespace: str,
    operator: OperatorProcess,
    operator_image: str,
    runtime_image: str,
    model_store: tuple[Path, str],
) -> None:
    """The operator image runs as its ServiceAccount in the ``restricted`` namespace and serves a
    ModelDeployment that names no image (so its configured default runtime image is used)."""
    store, url = model_store
    model = tiny_model(store / "model.onnx")
    manifest = on_real_node("from-pod", f"{url}/model.onnx", sha256(model), runtime_image, "v1")
    del manifest["spec"]["runtime"]["image"]
    deployment = node.operator_deployment(cluster.ports["apiserver"], operator_image, runtime_image)
    ns = ["-n", deployment["metadata"]["namespace"]]
    operator.stop()  # one operator at a time: the in-pod one takes over
    try:
        cluster.kubectl(*ns, "apply", "-f", "-", input=json.dumps(deployment))
        cluster.kubectl(*ns, "rollout", "status", "deployment/modelyard-operator",
                        "--timeout=120s")  # fmt: skip
        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))
        eventually(lambda: ready_version(cluster, namespace, "from-pod", "v1"), timeout=180,
                   what="Ready, reconciled by the operator pod")  # fmt: skip
        (pod,) = running_pods(cluster, namespace, "from-pod")
        (runtime,) = pod["spec"]["containers"]
        assert runtime["image"] == runtime_image
        assert infer(pod["status"]["podIP"], "from-pod") == [2 * v for v in ROW]
        operator_pods = get(cluster, *ns[1:], "pods", "-l",
                            "app.kubernetes.io/name=modelyard-operator")  # fmt: skip
        assert operator_pods is not None
        (operator_pod,) = operator_pods["items"]
        assert operator_pod["status"]["containerStatuses"][0]["restartCount"] == 0
        metrics_url = f"http://{operator_pod['status']['podIP']}:8090/metrics"
        with urllib.request.urlopen(metrics_url, timeout=10) as response:
            text = response.read().decode()
        assert value(text, "modelyard_operator_reconcile_total", result="success") >= 1
    finally:
        cluster.kubectl(*ns, "delete", "deployment", "modelyard-operator", "--wait=true",
                        check=False)  # fmt: skip
        operator.start()

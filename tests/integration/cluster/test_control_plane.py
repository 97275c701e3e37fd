"""The local cluster is a real one: version, RBAC, PodSecurity, scheduling and GC all behave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.base import ROOT
from hack.cluster.localcluster import NODE_NAME, LocalCluster
from tests.support.kube import eventually

pytestmark = pytest.mark.cluster


def pinned_version() -> str:
    for line in (ROOT / "hack" / "cluster" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1]
    raise AssertionError("no KUBERNETES_VERSION in versions.env")


def test_version_is_the_pinned_release(cluster: LocalCluster) -> None:
    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == pinned_version()
    client = json.loads(cluster.kubectl("version", "--client", "-o", "json").stdout)
    assert client["clientVersion"]["gitVersion"] == pinned_version()


def test_rbac_denies_what_a_role_lacks(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("-n", namespace, "create", "serviceaccount", "reader")
    cluster.kubectl(
        "-n", namespace, "create", "role", "read-pods", "--verb=get,list", "--resource=pods"
    )
    cluster.kubectl(
        "-n", namespace, "create", "rolebinding", "reader", "--role=read-pods",
        f"--serviceaccount={namespace}:reader",
    )  # fmt: skip
    config = cluster.service_account_kubeconfig(namespace, "reader", tmp_path / "reader")
    allowed = cluster.kubectl("-n", namespace, "get", "pods", kubeconfig=config, check=False)
    assert allowed.returncode == 0, allowed.stderr
    denied = cluster.kubectl(
        "-n", namespace, "create", "configmap", "x", "--from-literal=a=b", kubeconfig=config,
        check=False,
    )  # fmt: skip
    assert denied.returncode != 0
    assert f"system:serviceaccount:{namespace}:reader" in denied.stderr
    assert "forbidden" in denied.stderr


def test_pod_security_restricted_rejects_a_privileged_pod(
    cluster: LocalCluster, namespace: str
) -> None:
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "securityContext": {"privileged": True}}]},
    }  # fmt: skip
    result = cluster.kubectl(
        "-n", namespace, "apply", "-f", "-", input=json.dumps(pod), check=False
    )
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr
    assert "privileged" in result.stderr


def deployment(name: str, replicas: int, gpus: int = 0) -> str:
    container: dict[str, object] = {"name": "app", "image": "modelyard-runtime:test"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [container]}},
        },
    })  # fmt: skip


def pods(cluster: LocalCluster, namespace: str, app: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def conditions(pod: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (pod.get("status") or {}).get("conditions") or []
    return found


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions(pod))


def test_deployment_pods_are_scheduled_ready_and_garbage_collected(
    cluster: LocalCluster, namespace: str
) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=deployment("web", 3, gpus=1))
    eventually(
        lambda: len(p := pods(cluster, namespace, "web")) == 3 and all(map(ready, p)),
        what="3 ready pods",
    )
    nodes = {pod["spec"]["nodeName"] for pod in pods(cluster, namespace, "web")}
    assert nodes == {NODE_NAME}
    assert cluster.kubectl("-n", namespace, "get", "replicasets", "-o", "name").stdout.strip()
    cluster.kubectl("-n", namespace, "delete", "deployment", "web")
    eventually(
        lambda: (
            not cluster.kubectl("-n", namespace, "get", "replicasets", "-o", "name").stdout.strip()
            and not pods(cluster, namespace, "web")
        ),
        what="replicasets and pods garbage-collected",
    )


def test_gpu_capacity_is_enforced_by_the_scheduler(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=deployment("greedy", 1, gpus=9))
    eventually(lambda: bool(pods(cluster, namespace, "greedy")), what="the pod")

    def unschedulable() -> bool:
        (pod,) = pods(cluster, namespace, "greedy")
        return any(c.get("reason") == "Unschedulable" for c in conditions(pod))

    eventually(unschedulable, what="the 9-GPU pod to be unschedulable on an 8-GPU node")

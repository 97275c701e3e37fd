"""A pod that cannot start is reported by stage, from the runtime's own termination message.

No kubelet runs here, so the test plays the kubelet for one node that kwok leaves alone (named
as such: ``manual_node``): it runs the real ``modelyard-runtime`` command the container would
run, takes the termination message that command wrote, and reports it in the pod's status the
way a kubelet does. The operator must turn it into conditions and an Event within 30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.onnx_models import tiny_model
from hack.testbed.operator import OperatorProcess
from tests.support.kube import condition, eventually, get

pytestmark = pytest.mark.cluster
WRONG = "0" * 64


@pytest.fixture
def manual_node(cluster: LocalCluster, namespace: str) -> Iterator[str]:
    """A Ready node without kwok's annotation: nothing but the test acts on its pods."""
    name = f"manual-{namespace}"
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "20"}
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(node))
    status = {
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "played by the test",
                    "lastHeartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            ],
        }
    }
    cluster.kubectl(
        "patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )
    yield name
    cluster.kubectl("delete", "node", name, "--wait=false", check=False)


def run_runtime(*args: str) -> tuple[int, str]:
    """Run ``modelyard-runtime`` for real; (exit code, termination message it wrote)."""
    log = Path(args[args.index("--termination-log") + 1])
    result = subprocess.run(
        [sys.executable, "-m", "modelyard_runtime", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode, log.read_text() if log.exists() else ""


def scheduled_pod(cluster: LocalCluster, namespace: str, node: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def bound() -> bool:
        pods = json.loads(cluster.kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)
        found[:] = [p for p in pods["items"] if p["spec"].get("nodeName") == node]
        return bool(found)

    eventually(bound, what=f"a pod bound to {node}")
    return found[0]


def terminated(name: str, code: int, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "ready": False,
        "restartCount": 1,
        "image": "localhost/modelyard-runtime:test",
        "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": code, "reason": "Error", "message": message}},
    }


def report(cluster: LocalCluster, namespace: str, pod: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "-n", namespace, "patch", "pod", pod, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_digest_mismatch_names_both_digests(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str, manual_node: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    model = tiny_model(tmp_path / "model.onnx")
    uri = f"file://{model}"
    code, message = run_runtime(
        "fetch", "--uri", uri, "--out", str(tmp_path / "out.onnx"), "--sha256", WRONG,
        "--termination-log", str(tmp_path / "termination-log"),
    )  # fmt: skip
    assert code == 1
    assert message.startswith("verify: ")

    manifest = md_manifest(
        "mismatch", uri=uri, sha256=WRONG,
        extra_spec={"scheduling": {"nodeSelector": {"kubernetes.io/hostname": manual_node}}},
    )  # fmt: skip
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))
    pod = scheduled_pod(cluster, namespace, manual_node)
    reported = time.monotonic()
    report(
        cluster, namespace, pod["metadata"]["name"],
        {
            "phase": "Pending",
            "initContainerStatuses": [terminated("fetch", 1, message)],
            "containerStatuses": [
                {"name": "runtime", "ready": False, "restartCount": 0, "image": "x",
                 "imageID": "", "state": {"waiting": {"reason": "PodInitializing"}}}
            ],
        },
    )  # fmt: skip

    def verified_false() -> bool:
        found = condition(get(cluster, namespace, "mdep", "mismatch"), "ModelVerified")
        return found.get("status") == "False"

    eventually(verified_false, timeout=30, what="ModelVerified=False")
    assert time.monotonic() - reported < 30
    md = get(cluster, namespace, "mdep", "mismatch")
    verified = condition(md, "ModelVerified")
    assert verified["reason"] == "DigestMismatch"
    assert WRONG in verified["message"]
    assert verified["message"].startswith("verify: sha256 of")
    assert condition(md, "Ready")["reason"] == "DigestMismatch"
    assert md is not None
    assert md["status"]["phase"] == "Failed"
    assert md["status"]["history"][0]["result"] == "Failed"
    events = cluster.kubectl(
        "-n", namespace, "get", "events", "-o", "json",
        "--field-selector=involvedObject.name=mismatch,reason=DigestMismatch",
    )  # fmt: skip
    assert any(e["type"] == "Warning" for e in json.loads(events.stdout)["items"])


def test_load_failure_names_the_stage(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str, manual_node: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(b"this is not an onnx model")
    code, message = run_runtime(
        "serve", "--model", str(garbage), "--host", "127.0.0.1", "--http-port", "0",
        "--grpc-port", "0", "--termination-log", str(tmp_path / "termination-log"),
    )  # fmt: skip
    assert code == 1
    assert message.startswith("load: ")

    manifest = md_manifest(
        "garbage", uri=f"file://{garbage}",
        extra_spec={"scheduling": {"nodeSelector": {"kubernetes.io/hostname": manual_node}}},
    )  # fmt: skip
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))
    pod = scheduled_pod(cluster, namespace, manual_node)
    fetched = {
        "name": "fetch", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }  # fmt: skip
    report(
        cluster, namespace, pod["metadata"]["name"],
        {"phase": "Running", "initContainerStatuses": [fetched],
         "containerStatuses": [terminated("runtime", 1, message)]},
    )  # fmt: skip
    eventually(
        lambda: (
            condition(get(cluster, namespace, "mdep", "garbage"), "Ready").get("reason")
            == "LoadFailed"
        ),
        timeout=30,
        what="Ready=False reason LoadFailed",
    )
    md = get(cluster, namespace, "mdep", "garbage")
    assert condition(md, "Ready")["message"].startswith("load: ")
    # The file arrived intact (no digest declared); it is the model itself that fails.
    assert condition(md, "ModelVerified")["reason"] == "NoDigest"
    assert condition(md, "Degraded")["status"] == "True"

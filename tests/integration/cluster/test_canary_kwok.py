"""Canary mechanics against the real apiserver and controllers, on kwok's fake pods: the
canary Deployment appears, the stable shrinks only for ready canary pods, the steps advance,
promotion moves the stable and removes the canary; actions through the annotation and the
``modelyard rollout`` CLI. (No metrics here: ``analysis.metrics: []`` steps on pauses alone;
judged canaries run on the real node with Prometheus, in test_canary.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess
from tests.support.kube import eventually, get

pytestmark = pytest.mark.cluster


def canary(name: str, version: str, **rollout: Any) -> dict[str, Any]:
    spec = {"steps": [{"weight": 25, "pause": "2s"}, {"weight": 50, "pause": "2s"}],
            "analysis": {"metrics": []}, **rollout}  # fmt: skip
    return md_manifest(name, version=version, replicas=4, extra_spec={"rollout": spec})


def apply(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))


def status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    found = get(cluster, namespace, "mdep", name)
    assert found is not None
    return dict(found.get("status") or {})


def cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.admin_kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "modelyard_cli", "rollout", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def stable_version(cluster: LocalCluster, namespace: str, name: str, version: str) -> bool:
    found = status(cluster, namespace, name)
    return found.get("phase") == "Ready" and found.get("stable", {}).get("version") == version


def test_a_canary_steps_and_is_promoted(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, canary("fraud", "v1"))
    eventually(lambda: stable_version(cluster, namespace, "fraud", "v1"), what="v1 Ready")
    apply(cluster, namespace, canary("fraud", "v2"))
    seen_weights: set[int] = set()
    min_stable = 4

    def promoted() -> bool:
        nonlocal min_stable
        now = status(cluster, namespace, "fraud")
        seen_weights.add(now.get("canary", {}).get("desiredWeight", 0))
        stable = get(cluster, namespace, "deployment", "fraud") or {}
        min_stable = min(min_stable, stable.get("spec", {}).get("replicas", 4))
        return stable_version(cluster, namespace, "fraud", "v2")

    eventually(promoted, timeout=120, what="v2 promoted")
    assert {25, 50} <= seen_weights
    assert min_stable == 2  # 50% of 4: the stable shrank for the two ready canary pods
    assert get(cluster, namespace, "deployment", "fraud-canary") is None
    final = status(cluster, namespace, "fraud")
    assert [h["result"] for h in final["history"][:2]] == ["Promoted", "Ready"]
    out = cli(cluster, "history", "fraud", "-n", namespace)
    assert out.returncode == 0, out.stderr
    assert "Promoted" in out.stdout


def test_actions_through_the_cli_and_the_annotation(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    held = {"steps": [{"weight": 25, "pause": "1h"}]}
    apply(cluster, namespace, canary("steer", "v1", **held))
    eventually(lambda: stable_version(cluster, namespace, "steer", "v1"), what="v1 Ready")
    apply(cluster, namespace, canary("steer", "v2", **held))
    eventually(lambda: status(cluster, namespace, "steer").get("canary", {}).get("stepStartedAt")
               != "", what="the canary at its first step")  # fmt: skip

    out = cli(cluster, "pause", "steer", "-n", namespace)
    assert out.returncode == 0, out.stderr
    eventually(lambda: status(cluster, namespace, "steer").get("phase") == "Paused", what="Paused")
    shown = cli(cluster, "status", "steer", "-n", namespace)
    assert "paused (action)" in shown.stdout
    refused = cli(cluster, "retry", "steer", "-n", namespace)
    assert refused.returncode == 1
    assert "retry applies after a rollback" in refused.stderr

    cluster.kubectl("-n", namespace, "annotate", "mdep", "steer",
                    "serving.modelyard.io/action=abort")  # fmt: skip

    def rolled_back() -> bool:
        found = status(cluster, namespace, "steer")
        return (found.get("rolledBack") or {}).get("result") == "Aborted"

    eventually(rolled_back, timeout=60, what="aborted")
    md = get(cluster, namespace, "mdep", "steer")
    assert md is not None
    assert "serving.modelyard.io/action" not in md["metadata"].get("annotations", {})
    assert status(cluster, namespace, "steer")["phase"] == "Degraded"
    assert status(cluster, namespace, "steer")["stable"]["version"] == "v1"
    assert get(cluster, namespace, "deployment", "steer-canary") is None

    assert cli(cluster, "retry", "steer", "-n", namespace).returncode == 0
    eventually(lambda: status(cluster, namespace, "steer").get("canary", {}).get("state")
               == "Stepping", what="the canary started again")  # fmt: skip
    assert cli(cluster, "promote", "steer", "-n", namespace).returncode == 0
    eventually(lambda: stable_version(cluster, namespace, "steer", "v2"), timeout=90,
               what="v2 promoted by the promote action")  # fmt: skip
    reasons = {e["reason"] for e in json.loads(cluster.kubectl(
        "-n", namespace, "get", "events", "-o", "json").stdout)["items"]}  # fmt: skip
    assert {"CanaryStarted", "RolloutPaused", "RollingBack", "Aborted", "Promoting",
            "Promoted"} <= reasons  # fmt: skip

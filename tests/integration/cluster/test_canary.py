"""Canary rollouts judged on real metrics (tier D): real runtime pods on the real node, the real
Prometheus scraping them, the operator querying it, steady kept-alive load through the
Service's ClusterIP (kube-proxy), every request counted.

Steps, pauses and analysis intervals are seconds long (set in the spec) so the suite stays
short; ``make bench-rollouts`` runs the realistic ones.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed import onnx_models
from hack.testbed.load import SteadyLoad
from hack.testbed.operator import OperatorProcess
from tests.support.kube import eventually, get
from tests.support.realnode import on_real_node, sha256

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
INTERVAL = "6s"


def rollout_spec(**analysis: Any) -> dict[str, Any]:
    return {
        "steps": [{"weight": 34, "pause": "8s"}, {"weight": 67, "pause": "8s"}],
        "analysis": {
            "interval": INTERVAL,
            "failureThreshold": 2,
            "minSampleCount": 10,
            **analysis,
        },
    }


def manifest(url: str, model: Path, image: str, version: str, **analysis: Any) -> dict[str, Any]:
    md = on_real_node("canary", f"{url}/{model.name}", sha256(model), image, version, replicas=3)
    md["spec"]["rollout"] = rollout_spec(**analysis)
    # Steps of seconds: kept-alive clients must move between pods within one step.
    md["spec"]["runtime"]["maxConnectionAge"] = "2s"
    return md


def until(cluster: LocalCluster, namespace: str, check: Any, *, timeout: float, what: str) -> None:
    """``eventually``, with the ModelDeployment's status in the message when it times out."""
    try:
        eventually(check, timeout=timeout, what=what)
    except AssertionError as e:
        shown = json.dumps(status(cluster, namespace), indent=1)[-3000:]
        raise AssertionError(f"{e}; status:\n{shown}") from None


def status(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    found = get(cluster, namespace, "mdep", "canary")
    assert found is not None
    return dict(found.get("status") or {})


def apply(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(body))


def serving_version(cluster: LocalCluster, namespace: str, version: str) -> bool:
    found = status(cluster, namespace)
    return found.get("phase") == "Ready" and found.get("stable", {}).get("version") == version


def prometheus(cluster: LocalCluster, promql: str) -> list[float]:
    url = f"{cluster.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.loads(response.read())["data"]
    return [float(sample["value"][1]) for sample in data["result"]]


@pytest.fixture
def stable_v1(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess, runtime_image: str,
    model_store: tuple[Path, str],
) -> Iterator[tuple[Path, str, SteadyLoad]]:  # fmt: skip
    """v1 (the tiny model) Ready on three real pods, with steady load on its Service."""
    store, url = model_store
    v1 = onnx_models.tiny_model(store / "v1.onnx", 2.0)
    apply(cluster, namespace, manifest(url, v1, runtime_image, "v1"))
    eventually(lambda: serving_version(cluster, namespace, "v1"), timeout=180, what="v1 Ready")
    service = get(cluster, namespace, "service", "canary")
    assert service is not None
    load = SteadyLoad(service["spec"]["clusterIP"], 8080, "canary", clients=6, rate=10)
    with load:
        eventually(lambda: load.versions()["v1"] >= 20, timeout=60, what="load reaching v1")
        yield store, url, load


def test_a_healthy_canary_is_promoted_through_every_step_with_no_failed_request(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess, runtime_image: str,
    stable_v1: tuple[Path, str, SteadyLoad],
) -> None:  # fmt: skip
    store, url, load = stable_v1
    v2 = onnx_models.tiny_model(store / "v2.onnx", 3.0)
    apply(cluster, namespace, manifest(url, v2, runtime_image, "v2"))

    # Prometheus goes down while the first step runs: the rollout holds.
    eventually(lambda: status(cluster, namespace).get("canary", {}).get("stepStartedAt", "")
               != "", timeout=120, what="the canary at step 1")  # fmt: skip
    cluster.stop_prometheus()
    try:
        eventually(
            lambda: (status(cluster, namespace).get("canary", {}).get("lastAnalysis") or {})
            .get("result") == "inconclusive", timeout=60, what="an inconclusive analysis",
        )  # fmt: skip
        held = time.monotonic()
        while time.monotonic() - held < 16:  # two pauses: without Prometheus it must not move
            assert status(cluster, namespace)["canary"]["step"] == 1
            time.sleep(1)  # watching that nothing happens, for a bounded time
    finally:
        cluster.start_prometheus()

    # The operator is killed during step 2: it resumes where it was.
    until(cluster, namespace, lambda: status(cluster, namespace).get("canary", {}).get("step") == 2,
          timeout=120, what="step 2")  # fmt: skip
    operator.kill()
    operator.start()
    until(cluster, namespace, lambda: serving_version(cluster, namespace, "v2"), timeout=180,
          what="v2 promoted")  # fmt: skip
    final = status(cluster, namespace)
    assert [h["result"] for h in final["history"][:2]] == ["Promoted", "Ready"]
    assert get(cluster, namespace, "deployment", "canary-canary") is None
    eventually(lambda: load.versions(since=time.monotonic() - 5)["v2"] > 10, timeout=60,
               what="v2 answering all the traffic")  # fmt: skip
    assert load.failures() == [], load.failures()[:5]
    # The rollout's own events (the Progressing condition's transitions share the reason).
    steps = [e["message"] for e in events(cluster, namespace)
             if e["reason"] == "CanaryStep" and e["message"].startswith("step ")]  # fmt: skip
    assert steps == ["step 2/2: 67% to v2"], steps  # entered once, before and after the restart


def events(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("-n", namespace, "get", "events", "-o", "json").stdout
    return [e for e in json.loads(out)["items"]
            if e["involvedObject"].get("kind") == "ModelDeployment"]  # fmt: skip


def test_a_slow_canary_is_rolled_back_on_latency_with_no_failed_request(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess, runtime_image: str,
    stable_v1: tuple[Path, str, SteadyLoad],
) -> None:  # fmt: skip
    store, url, load = stable_v1
    v2 = onnx_models.slow_model(store / "v2.onnx")
    checks = [{"name": "latency-p99", "latency": {"quantile": 0.99, "max": "10ms"}}]
    apply(cluster, namespace, manifest(url, v2, runtime_image, "v2", metrics=checks))

    canary_p99 = (
        "histogram_quantile(0.99, sum by (le) (rate(modelyard_request_duration_seconds_bucket"
        f'{{namespace="{namespace}",track="canary"}}[{INTERVAL}])))'
    )
    eventually(lambda: any(v > 0.010 for v in prometheus(cluster, canary_p99)), timeout=180,
               what="the breach visible in Prometheus")  # fmt: skip
    breach = time.monotonic()
    eventually(lambda: status(cluster, namespace).get("phase") == "RollingBack", timeout=60,
               what="the rollback")  # fmt: skip
    operator.kill()  # during the rollback: the new operator finishes it
    operator.start()

    def rolled_back() -> bool:
        found = status(cluster, namespace)
        return (found.get("rolledBack") or {}).get("result") == "RolledBack"

    until(cluster, namespace, rolled_back, timeout=120, what="RolledBack")
    final = status(cluster, namespace)
    assert "latency-p99" in final["rolledBack"]["reason"]
    assert "bound <= 0.01 s" in final["rolledBack"]["reason"]
    assert (final["phase"], final["stable"]["version"]) == ("Degraded", "v1")
    assert [h["result"] for h in final["history"][:2]] == ["RolledBack", "Ready"]
    assert get(cluster, namespace, "deployment", "canary-canary") is None
    last_v2 = load.last_answer_from("v2")
    assert last_v2 is not None
    print(f"breach visible -> canary at 0 traffic: {last_v2 - breach:.1f} s")
    assert load.failures() == [], load.failures()[:5]


def test_a_canary_answering_5xx_is_rolled_back_on_error_rate(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess, runtime_image: str,
    stable_v1: tuple[Path, str, SteadyLoad],
) -> None:  # fmt: skip
    store, url, load = stable_v1
    v2 = onnx_models.failing_model(store / "v2.onnx")
    checks = [{"name": "errors", "errorRate": {"max": 0.05}}]
    started = time.monotonic()
    apply(cluster, namespace, manifest(url, v2, runtime_image, "v2", metrics=checks))

    def rolled_back() -> bool:
        return (status(cluster, namespace).get("rolledBack") or {}).get("result") == "RolledBack"

    until(cluster, namespace, rolled_back, timeout=180, what="RolledBack on errors")
    reason = status(cluster, namespace)["rolledBack"]["reason"]
    assert "errors 1 (bound <= 0.05)" in reason
    failed = load.failures(since=started)
    assert failed, "the canary never answered 5xx: the scenario did not happen"
    assert {f.status for f in failed} == {500}  # only the canary's own answers, no lost request
    assert all("inference failed" in f.error for f in failed)

"""Autoscaling on the runtime's exported metrics, with the real HPA controller (the local
cluster's kube-controller-manager, default 15 s sync), prometheus-adapter serving the shipped
rules (deploy/prometheus-adapter/rules.yaml) from the real Prometheus, and, on the real node
(tier D), real runtime pods under kept-alive load through the Service's ClusterIP, every request
counted. The scale-down stabilization window is shortened through the spec's ``behavior``.
Also: the metric absent (kwok pods that nobody scrapes) holds the HPA without harm, and the KEDA
ScaledObject the operator writes is valid against KEDA's own CRD.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.base import ROOT
from hack.cluster.localcluster import LocalCluster
from hack.testbed import onnx_models
from hack.testbed.load import SteadyLoad
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess
from modelyard_operator.api.v1alpha1 import ModelDeployment, quantity_value
from modelyard_operator.reconcile.autoscaling import build_scaled_object
from tests.support.kube import eventually, get
from tests.support.realnode import on_real_node, sha256

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
# Back in within seconds in the test; the default (300 s) is what an install gets.
FAST_DOWN = {"scaleDown": {
    "stabilizationWindowSeconds": 20,
    "policies": [{"type": "Pods", "value": 2, "periodSeconds": 10}],
}}  # fmt: skip


def apply(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(body))


def status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    found = get(cluster, namespace, "mdep", name)
    assert found is not None
    return dict(found.get("status") or {})


def until(cluster: LocalCluster, namespace: str, name: str, check: Any, *, timeout: float,
          what: str) -> None:  # fmt: skip
    """``eventually``, with the ModelDeployment's status and its HPA in the message."""
    try:
        eventually(check, timeout=timeout, what=what)
    except AssertionError as e:
        hpa = get(cluster, namespace, "hpa", name) or {}
        shown = json.dumps({"md": status(cluster, namespace, name), "hpa": hpa.get("status")},
                           indent=1)[-4000:]  # fmt: skip
        raise AssertionError(f"{e}; state:\n{shown}") from None


def raw(cluster: LocalCluster, path: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "--raw", path, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def stable_replicas(cluster: LocalCluster, namespace: str, name: str) -> tuple[int, int]:
    """(spec.replicas, ready replicas) of the stable Deployment."""
    deployment = get(cluster, namespace, "deployment", name) or {}
    spec, found = deployment.get("spec") or {}, deployment.get("status") or {}
    return int(spec.get("replicas") or 0), int(found.get("readyReplicas") or 0)


def prometheus(cluster: LocalCluster, promql: str) -> dict[str, float]:
    url = f"{cluster.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.loads(response.read())["data"]
    return {s["metric"].get("pod", ""): float(s["value"][1]) for s in data["result"]}


def events(cluster: LocalCluster, namespace: str, reason: str) -> list[str]:
    out = cluster.kubectl("-n", namespace, "get", "events", "-o", "json").stdout
    return [e["message"] for e in json.loads(out)["items"]
            if e["involvedObject"].get("kind") == "ModelDeployment"
            and e["reason"] == reason]  # fmt: skip


def test_under_load_the_hpa_scales_out_on_in_flight_and_back_in_with_no_failed_request(
    custom_metrics: LocalCluster, namespace: str, operator: OperatorProcess, runtime_image: str,
    model_store: tuple[Path, str],
) -> None:  # fmt: skip
    cluster = custom_metrics
    store, url = model_store
    model = onnx_models.slow_model(store / "slow.onnx")  # tens of ms a row
    md = on_real_node("scaled", f"{url}/{model.name}", sha256(model), runtime_image, "v1")
    md["spec"]["autoscaling"] = {
        "minReplicas": 1, "maxReplicas": 3, "metric": "inFlight", "target": 1,
        "behavior": FAST_DOWN,
    }  # fmt: skip
    md["spec"]["runtime"]["maxConnectionAge"] = "2s"  # kept-alive clients reach new pods
    apply(cluster, namespace, md)
    until(cluster, namespace, "scaled", lambda: status(cluster, namespace, "scaled")
          .get("phase") == "Ready", timeout=180, what="Ready on one pod")  # fmt: skip
    hpa = get(cluster, namespace, "hpa", "scaled")
    assert hpa is not None
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 20
    assert hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0

    service = get(cluster, namespace, "service", "scaled")
    assert service is not None
    # Closed loop (each client sends its next request when the last one is answered): about
    # four requests in flight whatever the pod count, so 1 per pod wants 4 pods (max 3).
    load = SteadyLoad(service["spec"]["clusterIP"], 8080, "scaled", clients=4, rate=1000.0)
    selector = urllib.parse.quote("serving.modelyard.io/deployment=scaled")
    in_flight = (
        f"{CUSTOM}/namespaces/{namespace}/pods/*/modelyard_requests_in_flight"
        f"?labelSelector={selector}"
    )
    with load:
        started = time.monotonic()

        def served() -> bool:
            found = raw(cluster, in_flight)
            return bool(found and found["items"] and quantity_value(found["items"][0]["value"]) > 0)

        eventually(served, timeout=90, what="the custom metrics API serving in-flight > 0")
        # The fleet's p95, one value on the Service (the histogram's series appear with the
        # first request, so the adapter lists them at its next relist).
        p95_path = (
            f"{CUSTOM}/namespaces/{namespace}/services/scaled/modelyard_request_latency_p95_seconds"
        )

        def fleet_p95() -> bool:
            found = raw(cluster, p95_path)
            return bool(
                found
                and found["items"][0]["describedObject"]["kind"] == "Service"
                and quantity_value(found["items"][0]["value"]) > 0
            )

        eventually(fleet_p95, timeout=60, what="the fleet p95 on the Service")

        until(cluster, namespace, "scaled", lambda: stable_replicas(cluster, namespace, "scaled")
              == (3, 3), timeout=180, what="3 ready replicas")  # fmt: skip
        scaled_out = time.monotonic() - started
        served_by = (
            f'sum by (pod) (increase(modelyard_requests_total{{namespace="{namespace}"}}[10s]))'
        )
        eventually(lambda: sum(v > 0 for v in prometheus(cluster, served_by).values()) == 3,
                   timeout=60, what="all 3 pods answering requests")  # fmt: skip
        until(cluster, namespace, "scaled", lambda: (status(cluster, namespace, "scaled")
              .get("autoscaling") or {}).get("desiredReplicas") == 3, timeout=60,
              what="status.autoscaling.desiredReplicas 3")  # fmt: skip
        assert status(cluster, namespace, "scaled")["replicas"] == 3
        assert load.failures() == [], load.failures()[:5]
    stopped = time.monotonic()
    until(cluster, namespace, "scaled", lambda: stable_replicas(cluster, namespace, "scaled")
          == (1, 1), timeout=180, what="back to 1 replica")  # fmt: skip
    scaled_in = time.monotonic() - stopped
    print(
        f"load -> 3 ready: {scaled_out:.1f} s; load stopped -> 1: {scaled_in:.1f} s; "
        f"{len(load.results)} requests"
    )
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 100
    resized = events(cluster, namespace, "AutoscalerResized")
    assert any("to 3" in m for m in resized), resized
    until(cluster, namespace, "scaled", lambda: status(cluster, namespace, "scaled")
          .get("replicas") == 1, timeout=60, what="status.replicas 1")  # fmt: skip
    columns = cluster.kubectl("-n", namespace, "get", "mdep", "scaled", "-o", "wide").stdout
    header = columns.splitlines()[0]
    assert "DESIRED" in header
    assert "SCALING" in header


def test_without_the_metric_the_hpa_holds_and_nothing_breaks(
    custom_metrics: LocalCluster, namespace: str, operator: OperatorProcess,
) -> None:  # fmt: skip
    """kwok's pods serve no /metrics: the adapter has nothing for them, the HPA says so and
    keeps the size; the ModelDeployment stays Ready and shows why it does not scale."""
    cluster = custom_metrics
    md = md_manifest("unscraped", extra_spec={"autoscaling": {
        "minReplicas": 2, "maxReplicas": 4, "metric": "queueDepth", "target": 1}})  # fmt: skip
    apply(cluster, namespace, md)

    def holding() -> bool:
        found = status(cluster, namespace, "unscraped").get("autoscaling") or {}
        return str(found.get("reason", "")).startswith("FailedGet")

    until(cluster, namespace, "unscraped", holding, timeout=120, what="the HPA holding")
    found = status(cluster, namespace, "unscraped")
    assert found["phase"] == "Ready"
    assert stable_replicas(cluster, namespace, "unscraped") == (2, 2)
    assert "queue_depth" in found["autoscaling"]["message"]


def keda_crds() -> Path:
    script = ROOT / "hack" / "cluster" / "build-autoscaling.sh"
    subprocess.run([str(script)], check=True, capture_output=True)
    out = subprocess.run([str(script), "--print-keda-crds"], check=True, capture_output=True,
                         text=True)  # fmt: skip
    return Path(out.stdout.strip())


@pytest.mark.parametrize("metric", ["inFlight", "latencyP99", "requestRate"])
def test_the_scaled_object_is_valid_against_kedas_crd(
    installed: LocalCluster, namespace: str, metric: str
) -> None:
    cluster = installed
    cluster.kubectl("apply", "--server-side", "-f", str(keda_crds()))
    established = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    eventually(lambda: cluster.kubectl("get", "crd", "scaledobjects.keda.sh", "-o", established,
                                       check=False).stdout == "True",
               timeout=30, what="KEDA's ScaledObject CRD established")  # fmt: skip
    manifest = md_manifest("keda", extra_spec={"autoscaling": {
        "engine": "keda", "minReplicas": 1, "maxReplicas": 5, "metric": metric, "target": "250m",
        "behavior": FAST_DOWN}})  # fmt: skip
    manifest["metadata"].update(namespace=namespace, uid="00000000-0000-0000-0000-000000000001")
    scaled = build_scaled_object(ModelDeployment.model_validate(manifest),
                                 "http://prometheus.monitoring:9090")  # fmt: skip
    assert scaled is not None
    scaled["metadata"].pop("ownerReferences")  # no such owner here
    # Strict field validation: a field KEDA's schema does not know is an error, not dropped.
    result = cluster.kubectl("-n", namespace, "apply", "--server-side", "--validate=strict",
                             "-f", "-", input=json.dumps(scaled), check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    stored = get(cluster, namespace, "scaledobject", "keda")
    assert stored is not None
    assert stored["spec"]["triggers"] == scaled["spec"]["triggers"]
    assert stored["spec"]["advanced"] == scaled["spec"]["advanced"]


def test_the_operator_switches_between_a_scaled_object_and_an_hpa(
    installed: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    """engine keda: the operator (as its ServiceAccount) writes the ScaledObject, queried at its
    Prometheus setting, and no HPA of its own; engine hpa again: the ScaledObject goes."""
    cluster = installed
    cluster.kubectl("apply", "--server-side", "-f", str(keda_crds()))
    established = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    eventually(lambda: cluster.kubectl("get", "crd", "scaledobjects.keda.sh", "-o", established,
                                       check=False).stdout == "True",
               timeout=30, what="KEDA's ScaledObject CRD established")  # fmt: skip
    scaling = {"engine": "keda", "minReplicas": 1, "maxReplicas": 3, "metric": "latencyP95",
               "target": "250m"}  # fmt: skip
    apply(cluster, namespace, md_manifest("switch", extra_spec={"autoscaling": scaling}))
    eventually(lambda: get(cluster, namespace, "scaledobject", "switch") is not None,
               timeout=60, what="the ScaledObject")  # fmt: skip
    scaled = get(cluster, namespace, "scaledobject", "switch")
    assert scaled is not None
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["serverAddress"] == cluster.prometheus_url
    assert trigger["metricType"] == "Value"
    assert get(cluster, namespace, "hpa", "switch") is None

    apply(cluster, namespace, md_manifest("switch", extra_spec={
        "autoscaling": {**scaling, "engine": "hpa"}}))  # fmt: skip
    eventually(lambda: get(cluster, namespace, "hpa", "switch") is not None
               and get(cluster, namespace, "scaledobject", "switch") is None,
               timeout=60, what="the HPA instead of the ScaledObject")  # fmt: skip

"""The autoscaler the operator writes (HPA or KEDA ScaledObject) and what it reads back."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hack.testbed.manifests import md_manifest
from modelyard_operator.api.v1alpha1 import AutoscalingStatus, ModelDeployment, quantity_value
from modelyard_operator.reconcile.autoscaling import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    SCALED_OBJECT,
    build_hpa,
    build_scaled_object,
    prometheus_query,
    read_hpa,
    scaling_event,
    stale_autoscalers,
)
from modelyard_operator.reconcile.children import stale_kinds, static_children


def model(**autoscaling: Any) -> ModelDeployment:
    spec = {"minReplicas": 1, "maxReplicas": 3, "target": 4, **autoscaling}
    manifest = md_manifest("m", extra_spec={"autoscaling": spec})
    manifest["metadata"].update(namespace="ns", uid="u1", generation=1)
    return ModelDeployment.model_validate(manifest)


@pytest.mark.parametrize("metric", ["inFlight", "queueDepth", "requestRate"])
def test_additive_signals_are_pods_metrics_averaged_per_pod(metric: str) -> None:
    hpa = build_hpa(model(metric=metric, target="1500m"))
    assert hpa is not None
    (entry,) = hpa["spec"]["metrics"]
    assert entry["type"] == "Pods"
    assert entry["pods"]["target"] == {"type": "AverageValue", "averageValue": "1500m"}


@pytest.mark.parametrize(
    ("metric", "name"),
    [("latencyP95", "modelyard_request_latency_p95_seconds"),
     ("latencyP99", "modelyard_request_latency_p99_seconds")],
)  # fmt: skip
def test_latency_is_one_fleet_value_on_the_service(metric: str, name: str) -> None:
    hpa = build_hpa(model(metric=metric, target="250m"))
    assert hpa is not None
    (entry,) = hpa["spec"]["metrics"]
    assert entry == {
        "type": "Object",
        "object": {
            "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "m"},
            "metric": {"name": name},
            "target": {"type": "Value", "value": "250m"},
        },
    }


def test_hpa_scales_the_stable_deployment_between_the_bounds() -> None:
    hpa = build_hpa(model(minReplicas=2, maxReplicas=7))
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "m"}  # fmt: skip
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 7)
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == "u1"


def test_default_behavior_scales_up_fast_and_down_slowly() -> None:
    hpa = build_hpa(model())
    assert hpa is not None
    behavior = hpa["spec"]["behavior"]
    assert behavior == {"scaleUp": DEFAULT_SCALE_UP, "scaleDown": DEFAULT_SCALE_DOWN}
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_behavior_overrides_only_what_the_spec_sets() -> None:
    md = model(behavior={
        "scaleUp": {"stabilizationWindowSeconds": 5},
        "scaleDown": {"stabilizationWindowSeconds": 10,
                      "policies": [{"type": "Percent", "value": 50, "periodSeconds": 5}],
                      "selectPolicy": "Min"},
    })  # fmt: skip
    hpa = build_hpa(md)
    assert hpa is not None
    up, down = hpa["spec"]["behavior"]["scaleUp"], hpa["spec"]["behavior"]["scaleDown"]
    assert up == {**DEFAULT_SCALE_UP, "stabilizationWindowSeconds": 5}
    assert down == {
        "stabilizationWindowSeconds": 10,
        "selectPolicy": "Min",
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 5}],
    }


def test_keda_engine_writes_a_scaled_object_and_no_hpa() -> None:
    md = model(engine="keda", metric="inFlight", target="2500m")
    assert build_hpa(md) is None
    scaled = build_scaled_object(md, "http://prometheus.monitoring:9090")
    assert scaled is not None
    assert (scaled["apiVersion"], scaled["kind"]) == SCALED_OBJECT
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"] == (
        DEFAULT_SCALE_UP
    )
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"] == {
        "serverAddress": "http://prometheus.monitoring:9090",
        "query": 'sum(modelyard_requests_in_flight{namespace="ns",model="m",track="stable"})',
        "threshold": "2.5",
    }
    assert static_children(md, prometheus_url="http://p:9090")[-1]["kind"] == "ScaledObject"
    assert ("autoscaling/v2", "HorizontalPodAutoscaler") in stale_kinds(md)
    assert SCALED_OBJECT not in stale_kinds(md)


def test_keda_latency_trigger_is_the_fleet_quantile_as_a_value() -> None:
    md = model(engine="keda", metric="latencyP99", target="250m")
    scaled = build_scaled_object(md, "http://p:9090")
    assert scaled is not None
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metricType"] == "Value"
    assert trigger["metadata"]["threshold"] == "0.25"
    query = trigger["metadata"]["query"]
    assert query.startswith("histogram_quantile(0.99, sum by (le) (rate(")
    assert 'modelyard_request_duration_seconds_bucket{namespace="ns",model="m"}[1m]' in query
    assert query.endswith("* 0")  # 0, not nothing, without traffic


def test_request_rate_query_counts_the_stable_track() -> None:
    query = prometheus_query(model(), "requestRate")
    assert (
        query == 'sum(rate(modelyard_requests_total{namespace="ns",model="m",track="stable"}[1m]))'
    )


def test_without_autoscaling_every_autoscaler_is_stale() -> None:
    md = ModelDeployment.model_validate(
        {**md_manifest("m"), "metadata": {"name": "m", "namespace": "ns"}}
    )
    assert build_hpa(md) is None
    assert build_scaled_object(md, "") is None
    assert stale_autoscalers(md) == [("autoscaling/v2", "HorizontalPodAutoscaler"), SCALED_OBJECT]


@pytest.mark.parametrize("target", ["fast", "-1", "0", 0, "1.5.5", "250 m"])
def test_target_must_be_a_positive_quantity(target: int | str) -> None:
    with pytest.raises(ValidationError, match="target"):
        model(target=target)


def test_unknown_metric_is_rejected() -> None:
    with pytest.raises(ValidationError, match="metric"):
        model(metric="cpu")


@pytest.mark.parametrize(
    ("quantity", "value"),
    [(4, 4.0), ("250m", 0.25), ("1.5", 1.5), ("2k", 2000.0), ("1Ki", 1024.0), ("5e-1", 0.5),
     ("100u", 1e-4)],
)  # fmt: skip
def test_quantity_value(quantity: int | str, value: float) -> None:
    assert quantity_value(quantity) == pytest.approx(value)


def hpa_status(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "m"}, "spec": {}, "status": status}


def test_reading_prefers_the_condition_that_explains_a_hold() -> None:
    body = hpa_status(
        currentReplicas=2, desiredReplicas=2,
        conditions=[
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
            {"type": "ScalingActive", "status": "False", "reason": "FailedGetPodsMetric",
             "message": "unable to get metric modelyard_requests_in_flight"},
        ],
    )  # fmt: skip
    reading = read_hpa(body)
    assert reading is not None
    assert (reading.desired, reading.current, reading.reason) == (2, 2, "FailedGetPodsMetric")


def test_reading_at_the_limit_says_so() -> None:
    body = hpa_status(
        currentReplicas=3, desiredReplicas=3, lastScaleTime="2026-01-01T00:00:00Z",
        conditions=[
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
            {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas"},
        ],
    )  # fmt: skip
    reading = read_hpa(body)
    assert reading is not None
    assert reading.reason == "TooManyReplicas"
    assert read_hpa(None) is None


def test_a_size_change_is_an_event_once() -> None:
    before = AutoscalingStatus(desired_replicas=1, current_replicas=1, last_scale_time="t1")
    after = AutoscalingStatus(desired_replicas=3, current_replicas=1, last_scale_time="t2",
                              reason="SucceededRescale", message="above target")  # fmt: skip
    event = scaling_event(before, after)
    assert event == (
        "AutoscalerResized",
        "the autoscaler changed the size from 1 to 3: above target",
    )
    assert scaling_event(after, after) is None
    assert scaling_event(before, None) is None
    assert scaling_event(None, AutoscalingStatus()) is None

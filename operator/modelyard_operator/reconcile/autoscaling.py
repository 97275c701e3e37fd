"""The autoscaler of a ModelDeployment: an HPA (``engine: hpa``) or a KEDA ScaledObject
(``engine: keda``), and what its HPA's status says for the ModelDeployment's status.

Pure and deterministic. Which kind of metric each signal is (docs/autoscaling.md):

- ``inFlight``, ``queueDepth``, ``requestRate`` add up over pods, so their per-pod average is the
  load each pod carries: ``Pods`` metrics with an ``AverageValue`` target, served per pod by the
  adapter rules in deploy/prometheus-adapter/rules.yaml.
- ``latencyP95``, ``latencyP99``: the mean of per-pod quantiles is not the fleet's quantile (one
  slow pod out of ten hides in a mean), so the adapter computes one quantile over every pod's
  histogram buckets and serves it on the ModelDeployment's Service (an ``Object`` metric with a
  ``Value`` target). The HPA then wants ``ceil(replicas * p95 / target)`` pods.

KEDA's trigger runs the same PromQL directly (``prometheus_query``), with the same metric type.
The HPA scales the stable track's Deployment; the canary follows its size (``rollout.sizing``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from modelyard_operator.api.v1alpha1 import (
    AutoscalingMetric,
    AutoscalingStatus,
    ModelDeployment,
    ScalingRules,
    quantity_value,
)
from modelyard_operator.reconcile import naming
from modelyard_runtime.contract.names import (
    AUTOSCALING_METRICS,
    QUEUE_DEPTH,
    REQUEST_DURATION,
    REQUESTS_IN_FLIGHT,
    REQUESTS_TOTAL,
)

Object = dict[str, Any]

HPA: Final = ("autoscaling/v2", "HorizontalPodAutoscaler")
SCALED_OBJECT: Final = ("keda.sh/v1alpha1", "ScaledObject")
# Signals for which one fleet-wide value is the truth: Object metrics on the Service.
FLEET_METRICS: Final[dict[str, float]] = {"latencyP95": 0.95, "latencyP99": 0.99}
# The window rates and quantiles are taken over: long enough for 4 scrapes at 15 s, short
# enough that a load step shows within a few scrapes. The adapter rules use the same.
RATE_WINDOW: Final = "1m"

# Fast up, slow down. Up: at once, doubling or +2 pods every 15 s, whichever is more. Down: only
# after 5 minutes of lower recommendations, then one pod a minute (a burst that comes back
# finds its pods still there).
DEFAULT_SCALE_UP: Final[Object] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 2, "periodSeconds": 15},
    ],
}
DEFAULT_SCALE_DOWN: Final[Object] = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Max",
    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
}


def _metadata(md: ModelDeployment) -> Object:
    return {
        "name": md.metadata.name,
        "namespace": md.metadata.namespace,
        "labels": naming.common_labels(md),
        "ownerReferences": [naming.owner_reference(md)],
    }


def _rules(rules: ScalingRules | None, default: Object) -> Object:
    if rules is None:
        return {**default, "policies": [dict(p) for p in default["policies"]]}
    out = dict(default)
    if rules.stabilization_window_seconds is not None:
        out["stabilizationWindowSeconds"] = rules.stabilization_window_seconds
    if rules.select_policy is not None:
        out["selectPolicy"] = rules.select_policy
    policies = rules.policies
    out["policies"] = (
        [p.model_dump(mode="json", by_alias=True) for p in policies]
        if policies is not None
        else [dict(p) for p in default["policies"]]
    )
    return out


def behavior(md: ModelDeployment) -> Object:
    """The HPA ``behavior``: the defaults above with what the spec overrides."""
    scaling = md.spec.autoscaling
    spec = scaling.behavior if scaling is not None else None
    return {
        "scaleUp": _rules(spec.scale_up if spec else None, DEFAULT_SCALE_UP),
        "scaleDown": _rules(spec.scale_down if spec else None, DEFAULT_SCALE_DOWN),
    }


def _scale_target(md: ModelDeployment) -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": naming.deployment_name(md, "stable"),
    }


def hpa_metric(md: ModelDeployment) -> Object:
    """The one ``metrics`` entry of the HPA."""
    scaling = md.spec.autoscaling
    assert scaling is not None
    name = AUTOSCALING_METRICS[scaling.metric]
    target = str(scaling.target)
    if scaling.metric in FLEET_METRICS:
        return {
            "type": "Object",
            "object": {
                "describedObject": {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": md.metadata.name,
                },
                "metric": {"name": name},
                "target": {"type": "Value", "value": target},
            },
        }
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": name},
            "target": {"type": "AverageValue", "averageValue": target},
        },
    }


def build_hpa(md: ModelDeployment) -> Object | None:
    scaling = md.spec.autoscaling
    if scaling is None or scaling.engine != "hpa":
        return None
    return {
        "apiVersion": HPA[0],
        "kind": HPA[1],
        "metadata": _metadata(md),
        "spec": {
            "scaleTargetRef": _scale_target(md),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [hpa_metric(md)],
            "behavior": behavior(md),
        },
    }


def prometheus_query(md: ModelDeployment, metric: AutoscalingMetric) -> str:
    """The PromQL the shipped adapter rule evaluates for this ModelDeployment, as one value:
    the stable track's total for the per-pod signals (KEDA divides by the pod count), the
    fleet's quantile (0 without traffic) for the latency ones."""
    ns, model = md.metadata.namespace, naming.model_name(md)
    matchers = f'namespace="{ns}",model="{model}"'
    if metric in FLEET_METRICS:
        quantile = FLEET_METRICS[metric]
        buckets = f"rate({REQUEST_DURATION}_bucket{{{matchers}}}[{RATE_WINDOW}])"
        count = f"rate({REQUEST_DURATION}_count{{{matchers}}}[{RATE_WINDOW}])"
        return f"histogram_quantile({quantile}, sum by (le) ({buckets})) > 0 or sum({count}) * 0"
    stable = f'{matchers},track="stable"'
    if metric == "requestRate":
        return f"sum(rate({REQUESTS_TOTAL}{{{stable}}}[{RATE_WINDOW}]))"
    series = {"inFlight": REQUESTS_IN_FLIGHT, "queueDepth": QUEUE_DEPTH}[metric]
    return f"sum({series}{{{stable}}})"


def _number(target: int | str) -> str:
    return f"{quantity_value(target):g}"


def build_scaled_object(md: ModelDeployment, prometheus_url: str) -> Object | None:
    """A KEDA ScaledObject (keda.sh/v1alpha1) with one prometheus trigger; KEDA makes the HPA
    (named keda-hpa-<name>) with the same behavior."""
    scaling = md.spec.autoscaling
    if scaling is None or scaling.engine != "keda":
        return None
    return {
        "apiVersion": SCALED_OBJECT[0],
        "kind": SCALED_OBJECT[1],
        "metadata": _metadata(md),
        "spec": {
            "scaleTargetRef": _scale_target(md),
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior(md)}},
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "Value" if scaling.metric in FLEET_METRICS else "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": prometheus_query(md, scaling.metric),
                        "threshold": _number(scaling.target),
                    },
                }
            ],
        },
    }


def autoscaler(md: ModelDeployment, prometheus_url: str) -> Object | None:
    """The autoscaler object the spec asks for, if any."""
    return build_hpa(md) or build_scaled_object(md, prometheus_url)


def stale_autoscalers(md: ModelDeployment) -> list[tuple[str, str]]:
    """(apiVersion, kind) of the autoscaler objects the spec no longer wants."""
    engine = md.spec.autoscaling.engine if md.spec.autoscaling else None
    return [kind for kind, wanted in ((HPA, "hpa"), (SCALED_OBJECT, "keda")) if engine != wanted]


# -- status ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """What an HPA's status says: its sizes and the condition that explains the last decision."""

    desired: int
    current: int
    reason: str
    message: str
    last_scale_time: str


def read_hpa(hpa: Mapping[str, Any] | None) -> Reading | None:
    """The HPA's sizes and why: the AbleToScale condition when it is False (backoff), else
    ScalingActive when False (the metric cannot be read: the HPA holds), else ScalingLimited
    when True (at min or max), else AbleToScale's own reason (SucceededRescale,
    ReadyForNewScale)."""
    if hpa is None:
        return None
    status = hpa.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    chosen: Mapping[str, Any] = {}
    for kind, when in (("AbleToScale", "False"), ("ScalingActive", "False"),
                       ("ScalingLimited", "True"), ("AbleToScale", "True")):  # fmt: skip
        condition = conditions.get(kind)
        if condition is not None and condition.get("status") == when:
            chosen = condition
            break
    return Reading(
        desired=int(status.get("desiredReplicas") or 0),
        current=int(status.get("currentReplicas") or 0),
        reason=str(chosen.get("reason", "")),
        message=str(chosen.get("message", "")),
        last_scale_time=str(status.get("lastScaleTime") or ""),
    )


def scaling_event(
    before: AutoscalingStatus | None, after: AutoscalingStatus | None
) -> tuple[str, str] | None:
    """(reason, message) of an Event when the autoscaler changed the size since ``before``."""
    if after is None or not after.last_scale_time or after.desired_replicas == 0:
        return None
    if before is not None and (
        before.last_scale_time == after.last_scale_time
        or before.desired_replicas == after.desired_replicas
    ):
        return None
    was = (
        f"from {before.desired_replicas} " if before is not None and before.desired_replicas else ""
    )
    why = f": {after.message}" if after.message else ""
    return (
        "AutoscalerResized",
        f"the autoscaler changed the size {was}to {after.desired_replicas}{why}",
    )

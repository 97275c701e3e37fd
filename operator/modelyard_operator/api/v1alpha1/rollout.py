"""``spec.rollout``: how a new revision reaches users (canary steps, routing, analysis).

A new revision (model or runtime change) starts as a canary next to the stable revision and moves
through ``steps``; before each step it must pass the ``analysis`` checks, judged on the metrics the
runtime exports. ``failureThreshold`` failed checks roll it back; checks that cannot decide
(too few requests, Prometheus unreachable) hold it, and ``spec.progressDeadline`` without
progress rolls it back too. The state machine is ``reconcile.rollout``; the checks'
PromQL is ``analysis.queries``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from modelyard_operator.api.v1alpha1.common import Duration, Wire, cel

METRIC_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
TEMPLATE_KEYS = ("namespace", "name", "revision", "track", "interval")


def _exactly_one(*fields: str) -> str:
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields) + " == 1"


class Step(Wire):
    weight: int = Field(ge=1, le=100)
    """Percent of the traffic the canary takes in this step (its share of ready pods with the
    replicas routing, rounded up to whole pods)."""
    pause: Duration = "1m"
    """How long the step lasts once its weight is reached; it moves on only when the latest
    analysis passed too."""


class ErrorRateCheck(Wire):
    max: float = Field(ge=0, le=1)
    """Highest share of 5xx answers among the canary's requests (0.01 = 1%)."""


class LatencyCheck(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.max) || has(self.maxRelativeToStable)",
                    "a latency check needs max, maxRelativeToStable or both",
                )
            ]
        }
    )

    quantile: float = Field(default=0.99, gt=0, lt=1)
    """Which quantile of modelyard_request_duration_seconds: 0.5, 0.95, 0.99..."""
    max: Duration | None = None
    """Highest canary quantile, e.g. 250ms."""
    max_relative_to_stable: float | None = Field(default=None, gt=0, le=100)
    """Highest ratio of the canary's quantile to the stable's, measured over the same window
    (1.2 = at most 20% slower)."""


class CustomCheck(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.min) || has(self.max)", "a custom check needs min, max or both"),
                cel(
                    "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "custom.min must not be greater than custom.max",
                ),
            ]
        }
    )

    query: str = Field(min_length=1, max_length=4096)
    """PromQL returning one number. {{namespace}}, {{name}}, {{revision}}, {{track}} and
    {{interval}} are replaced with the ModelDeployment's namespace and name, the canary's
    revision, "canary" and the analysis interval (e.g. 30s)."""
    min: float | None = None
    """Lowest passing value."""
    max: float | None = None
    """Highest passing value."""


class AnalysisMetric(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    _exactly_one("errorRate", "latency", "custom"),
                    "each analysis metric sets exactly one of errorRate, latency or custom",
                )
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63, pattern=METRIC_NAME_PATTERN)
    """Name of the check, shown in status, Events and metrics."""
    error_rate: ErrorRateCheck | None = None
    """Share of 5xx answers (modelyard_requests_total)."""
    latency: LatencyCheck | None = None
    """A latency quantile (modelyard_request_duration_seconds), absolute and/or against the
    stable."""
    custom: CustomCheck | None = None
    """Any PromQL with a bound."""


class Analysis(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.interval) || duration(self.interval) >= duration('1s')",
                    "analysis.interval must be at least 1s",
                    ".interval",
                ),
                cel(
                    "!has(self.metrics) || self.metrics.all(m, "
                    "self.metrics.exists_one(n, n.name == m.name))",
                    "analysis metric names must be unique",
                    ".metrics",
                ),
            ]
        }
    )

    interval: Duration = "30s"
    """How often the checks run, and the window each one looks at (use at least twice
    Prometheus's scrape interval)."""
    failure_threshold: int = Field(default=3, ge=1, le=100)
    """Failed checks (counted over the whole rollout) before the canary is rolled back."""
    min_sample_count: int = Field(default=50, ge=0, le=1_000_000_000)
    """Canary requests a window needs before a check can pass or fail; below it the check is
    inconclusive."""
    metrics: list[AnalysisMetric] | None = Field(default=None, max_length=16)
    """The checks. Unset: a 5xx share of at most 1% and a p99 latency at most 1.5 times the
    stable's. An empty list: no checks, the steps advance on their pauses alone."""


class ReplicasRouting(Wire):
    """The Service selects both tracks; the canary's share of ready pods is its weight."""


class TrafficRouting(Wire):
    replicas: ReplicasRouting = Field(
        default_factory=ReplicasRouting, json_schema_extra={"default": {}}
    )
    """Split traffic by pod counts: no mesh or gateway needed."""


class RolloutSpec(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.steps) || (!has(self.stepWeight) && !has(self.maxWeight)"
                    " && !has(self.stepPause))",
                    "rollout.steps and rollout.stepWeight/maxWeight/stepPause are exclusive",
                ),
                cel(
                    "has(self.stepWeight) == has(self.maxWeight)",
                    "rollout.stepWeight and rollout.maxWeight go together",
                    ".stepWeight",
                ),
                cel(
                    "!has(self.stepWeight) || self.stepWeight <= self.maxWeight",
                    "rollout.stepWeight must not be greater than rollout.maxWeight",
                    ".stepWeight",
                ),
                cel(
                    "!has(self.steps) || (self.steps.map(s, s.weight).isSorted()"
                    " && self.steps.all(a, self.steps.exists_one(b, b.weight == a.weight)))",
                    "rollout.steps weights must rise from step to step",
                    ".steps",
                ),
            ]
        }
    )

    strategy: Literal["Canary", "Immediate"] = "Canary"
    """Canary: a new revision is tested on part of the traffic and promoted or rolled back on
    its own. Immediate: a plain rolling update. The first revision is always immediate."""
    paused: bool = False
    """Hold the rollout at its current step (before the first one if it has not started)."""
    steps: list[Step] | None = Field(default=None, min_length=1, max_length=20)
    """The canary's weights and pauses; default 10% then 50%, one minute each."""
    step_weight: int | None = Field(default=None, ge=1, le=100)
    """Instead of steps: raise the weight by this much each step..."""
    max_weight: int | None = Field(default=None, ge=1, le=100)
    """...up to this weight, then promote."""
    step_pause: Duration | None = None
    """Pause of each stepWeight step (default 1m)."""
    traffic_routing: TrafficRouting = Field(
        default_factory=TrafficRouting, json_schema_extra={"default": {}}
    )
    """How traffic is split between the stable and the canary."""
    analysis: Analysis = Field(default_factory=Analysis, json_schema_extra={"default": {}})
    """The checks a canary must pass."""

    def resolved_steps(self) -> list[Step]:
        """The steps to run: ``steps``, or the ``stepWeight``/``maxWeight`` ramp, or the default."""
        if self.steps:
            return list(self.steps)
        if self.step_weight and self.max_weight:
            pause = self.step_pause or "1m"
            weights = list(range(self.step_weight, self.max_weight + 1, self.step_weight))
            if weights[-1] != self.max_weight:
                weights.append(self.max_weight)
            return [Step(weight=w, pause=pause) for w in weights]
        return [Step(weight=10, pause="1m"), Step(weight=50, pause="1m")]

    def resolved_metrics(self) -> list[AnalysisMetric]:
        """The checks to run: ``analysis.metrics``, or the default two when it is unset."""
        if self.analysis.metrics is not None:
            return list(self.analysis.metrics)
        return [
            AnalysisMetric(name="error-rate", error_rate=ErrorRateCheck(max=0.01)),
            AnalysisMetric(
                name="latency-p99",
                latency=LatencyCheck(quantile=0.99, max_relative_to_stable=1.5),
            ),
        ]

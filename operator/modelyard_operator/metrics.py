"""The operator's Prometheus metrics (design §5), on its own registry.

``modelyard_rollout_phase`` has one series per ModelDeployment and phase (1 for the current
phase, 0 otherwise) and is dropped when the ModelDeployment is deleted. It is rendered at scrape
time from one dict entry per ModelDeployment: six labelled gauge children each (a lock, a value
and their dicts) came to about 6 MiB at a thousand ModelDeployments. The canary metrics are
updated by the controller as rollouts run: the weight while a canary runs, a count per finished
rollout (promoted, rolled_back, aborted, superseded) and per analysis check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelyard_operator.api.v1alpha1 import Phase

PHASES: Final = get_args(Phase)
RESULT_LABELS: Final = {
    "Promoted": "promoted",
    "RolledBack": "rolled_back",
    "Aborted": "aborted",
    "Superseded": "superseded",
}
RECONCILE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PhaseCollector(Collector):
    """``modelyard_rollout_phase{namespace,name,phase}`` from the current phase of each object."""

    def __init__(self) -> None:
        self.phases: dict[tuple[str, str], str] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "modelyard_rollout_phase",
            "1 for the current phase of each ModelDeployment, 0 for the others.",
            labels=("namespace", "name", "phase"),
        )
        for (namespace, name), current in sorted(self.phases.items()):
            for phase in PHASES:
                family.add_metric((namespace, name, phase), 1.0 if phase == current else 0.0)
        yield family


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.reconcile_total = Counter(
            "modelyard_operator_reconcile_total",
            "Reconciles of ModelDeployments by result (success, retry, error).",
            ("result",),
            registry=reg,
        )
        self.reconcile_duration = Histogram(
            "modelyard_operator_reconcile_duration_seconds",
            "Time one reconcile took, from handler start to children applied.",
            buckets=RECONCILE_BUCKETS,
            registry=reg,
        )
        for result in ("success", "retry", "error"):  # at 0 from the start: rate() works at once
            self.reconcile_total.labels(result)
        self.rollout_phase = PhaseCollector()
        reg.register(self.rollout_phase)
        self.canary_weight = Gauge(
            "modelyard_canary_weight",
            "Share of traffic (percent) sent to the canary.",
            ("namespace", "name"),
            registry=reg,
        )
        self.rollouts_total = Counter(
            "modelyard_rollouts_total",
            "Finished canary rollouts by result (promoted, rolled_back, aborted, superseded).",
            ("namespace", "name", "result"),
            registry=reg,
        )
        self.analysis_checks_total = Counter(
            "modelyard_analysis_checks_total",
            "Canary analysis checks by metric and result (pass, fail, inconclusive).",
            ("namespace", "name", "metric", "result"),
            registry=reg,
        )

    def set_phase(self, namespace: str, name: str, phase: str) -> None:
        self.rollout_phase.phases[namespace, name] = phase

    def set_canary_weight(self, namespace: str, name: str, weight: int | None) -> None:
        """The canary's share of traffic (percent); None: no canary, no series."""
        if weight is None:
            with contextlib.suppress(KeyError):
                self.canary_weight.remove(namespace, name)
        else:
            self.canary_weight.labels(namespace, name).set(weight)

    def rollout_started(self, namespace: str, name: str) -> None:
        """Every result's count at 0 from a ModelDeployment's first canary on, so the first
        ending is an increase (a counter born at 1 is invisible to ``increase``)."""
        for label in RESULT_LABELS.values():
            self.rollouts_total.labels(namespace, name, label)

    def rollout_ended(self, namespace: str, name: str, result: str) -> None:
        """A canary ended: Promoted, RolledBack, Aborted or Superseded."""
        label = RESULT_LABELS.get(result, result.lower())
        self.rollouts_total.labels(namespace, name, label).inc()

    def check_done(self, namespace: str, name: str, metric: str, result: str) -> None:
        self.analysis_checks_total.labels(namespace, name, metric, result).inc()

    def forget(self, namespace: str, name: str) -> None:
        self.rollout_phase.phases.pop((namespace, name), None)
        for label in RESULT_LABELS.values():
            with contextlib.suppress(KeyError):
                self.rollouts_total.remove(namespace, name, label)
        with contextlib.suppress(KeyError):
            self.canary_weight.remove(namespace, name)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""The operator's metrics as Prometheus reads them: one-hot phases, dropped on delete."""

from __future__ import annotations

from hack.testbed.metrics_text import samples
from modelyard_operator.metrics import PHASES, OperatorMetrics


def phase_samples(metrics: OperatorMetrics) -> dict[tuple[str, str, str], float]:
    text = metrics.render().decode()
    return {
        (labels["namespace"], labels["name"], labels["phase"]): value
        for labels, value in samples(text, "modelyard_rollout_phase")
    }


def test_rollout_phase_is_one_hot_per_object_and_follows_changes() -> None:
    metrics = OperatorMetrics()
    metrics.set_phase("ns", "a", "Progressing")
    metrics.set_phase("ns", "b", "Ready")
    metrics.set_phase("ns", "a", "Ready")

    found = phase_samples(metrics)

    assert len(found) == 2 * len(PHASES)
    assert {key for key, value in found.items() if value == 1.0} == {
        ("ns", "a", "Ready"),
        ("ns", "b", "Ready"),
    }


def test_forgotten_object_has_no_series_left() -> None:
    metrics = OperatorMetrics()
    metrics.set_phase("ns", "a", "Failed")
    metrics.set_phase("ns", "b", "Ready")

    metrics.forget("ns", "a")
    metrics.forget("ns", "never-seen")

    assert {name for _, name, _ in phase_samples(metrics)} == {"b"}


def test_rollout_phase_is_described_as_a_gauge() -> None:
    metrics = OperatorMetrics()
    metrics.set_phase("ns", "a", "Ready")
    text = metrics.render().decode()
    assert "# TYPE modelyard_rollout_phase gauge" in text

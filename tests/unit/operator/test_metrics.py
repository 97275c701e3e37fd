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


def test_a_first_canary_puts_every_result_at_zero_and_forget_drops_them() -> None:
    metrics = OperatorMetrics()
    metrics.rollout_started("ns", "m")
    found = samples(metrics.render().decode(), "modelyard_rollouts_total")
    assert {(labels["result"], value) for labels, value in found} == {
        ("promoted", 0.0), ("rolled_back", 0.0), ("aborted", 0.0), ("superseded", 0.0),
    }  # fmt: skip
    metrics.rollout_ended("ns", "m", "RolledBack")
    found = samples(metrics.render().decode(), "modelyard_rollouts_total")
    assert ({"namespace": "ns", "name": "m", "result": "rolled_back"}, 1.0) in found
    metrics.forget("ns", "m")
    assert samples(metrics.render().decode(), "modelyard_rollouts_total") == []

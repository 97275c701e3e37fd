"""docs/observability.md lists every metric the runtime and the operator export and every alert;
docs/runbooks.md has a section for every alert."""

from __future__ import annotations

from pathlib import Path

import pytest

from hack import alerts
from modelyard_operator.metrics import OperatorMetrics
from modelyard_runtime.metrics import RuntimeMetrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
OBSERVABILITY = (DOCS / "observability.md").read_text()
RUNBOOKS = (DOCS / "runbooks.md").read_text()


def metric_names() -> list[str]:
    runtime = RuntimeMetrics(model="m", version="v", revision="r", track="stable")
    names = []
    for registry in (runtime.registry, OperatorMetrics().registry):
        for family in registry.collect():
            names.append(family.name + ("_total" if family.type == "counter" else ""))
    return sorted(names)


@pytest.mark.parametrize("metric", metric_names())
def test_every_metric_is_documented(metric: str) -> None:
    assert f"`{metric}" in OBSERVABILITY


@pytest.mark.parametrize("alert", [a.name for a in alerts.alerts()])
def test_every_alert_is_documented_with_a_runbook(alert: str) -> None:
    assert f"[`{alert}`](runbooks.md#{alert.lower()})" in OBSERVABILITY
    assert f"\n## {alert}\n" in RUNBOOKS

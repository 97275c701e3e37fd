"""The shared names (``modelyard_runtime.contract.names``) match what each side really uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from modelyard_operator.reconcile.observed import pod_failure
from modelyard_runtime.contract import names
from modelyard_runtime.metrics import RuntimeMetrics

ROOT = Path(__file__).resolve().parents[2]
# Every place the runtime writes a stage: StartupError, FetchError and report_fatal calls.
_STAGE_CALL = re.compile(
    r'(?:StartupError|FetchError)\(\s*"([a-z]+)"|report_fatal\([^,]+,\s*"([a-z]+)"'
)


def test_every_stage_has_a_status_reason_and_nothing_else_does() -> None:
    assert set(get_args(names.Stage)) == set(names.STAGE_REASONS)
    assert set(names.STAGE_REASONS) >= names.MODEL_STAGES


def test_every_stage_the_runtime_writes_is_declared() -> None:
    written = set()
    for path in (ROOT / "runtime" / "modelyard_runtime").rglob("*.py"):
        for match in _STAGE_CALL.finditer(path.read_text()):
            written.add(match.group(1) or match.group(2))
    assert written, "no stage found: the pattern no longer matches the code"
    assert written <= set(names.STAGE_REASONS)


def test_the_operator_reads_every_stage_as_its_reason() -> None:
    for stage, reason in names.STAGE_REASONS.items():
        pod = {
            "metadata": {"name": "p"},
            "status": {
                "containerStatuses": [
                    {"name": "runtime", "state": {"terminated": {"exitCode": 1,
                                                                 "message": f"{stage}: boom"}}}
                ]
            },
        }  # fmt: skip
        failure = pod_failure(pod)
        assert failure is not None
        assert (failure.stage, failure.reason) == (stage, reason)


def test_runtime_metric_names_are_the_registered_ones() -> None:
    metrics = RuntimeMetrics(model="m", version="1", revision="r", track="stable")
    registered = {family.name for family in metrics.registry.collect()}
    # prometheus_client drops the _total suffix of counter family names
    declared = {name.removesuffix("_total") for name in names.RUNTIME_METRICS}
    assert registered == declared
    assert set(names.METRIC_LABELS) <= {
        label for family in metrics.registry.collect() for s in family.samples for label in s.labels
    }

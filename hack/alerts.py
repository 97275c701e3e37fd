"""The Prometheus alert and recording rules for modelyard: the one source of truth.

``python -m hack.alerts --write`` (``make alerts``) renders the rules twice, as a plain rule file
(``deploy/prometheus/modelyard-alerts.yaml``, for ``rule_files`` and ``promtool``) and as a
``PrometheusRule`` (``deploy/prometheus/modelyard-prometheusrule.yaml``, for the Prometheus
Operator; the Helm chart reuses it). ``--check`` exits 1 when a committed copy is stale.

Series used are the design's contract (design §5) plus ``up`` for the two scrape jobs
(``modelyard-runtime`` and ``modelyard-operator``). The serving SLOs are alerted as in the
Google SRE workbook ("Alerting on SLOs", multiwindow, multi-burn-rate): 1h/5m at 14.4x and
6h/30m at 6x page, 1d/2h at 3x and 3d/6h at 1x open a ticket. Every alert carries
``severity``, ``summary``, ``description`` and a ``runbook_url`` into ``docs/runbooks.md``.

Pure data and rendering; the only I/O is ``main`` writing or comparing the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parents[1]
RULES_FILE: Final = Path("deploy/prometheus/modelyard-alerts.yaml")
PROMETHEUS_RULE_FILE: Final = Path("deploy/prometheus/modelyard-prometheusrule.yaml")
RUNBOOK_URL: Final = "https://github.com/modelyard/modelyard/blob/main/docs/runbooks.md"
RUNTIME_JOB: Final = "modelyard-runtime"
OPERATOR_JOB: Final = "modelyard-operator"

# Serving SLOs, per namespace and model, over all versions and tracks.
AVAILABILITY_OBJECTIVE: Final = 0.999  # requests answered without a 5xx or a 429
LATENCY_OBJECTIVE: Final = 0.99  # requests answered within LATENCY_THRESHOLD
LATENCY_THRESHOLD: Final = "0.25"  # seconds; an exact bucket edge of the runtime's histogram
ERROR_CODES: Final = "5..|429"  # 429: the queue was full, a capacity failure of ours
SLO_BY: Final = "namespace, model"
# (long window, short window, burn rate) pairs: the workbook's table.
FAST_BURN: Final = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
SLOW_BURN: Final = (("1d", "2h", 3.0), ("3d", "6h", 1.0))
WINDOWS: Final = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

ERRORS_RECORD: Final = "namespace_model:modelyard_requests_errors:ratio_rate"
SLOW_RECORD: Final = "namespace_model:modelyard_requests_slow:ratio_rate"


@dataclasses.dataclass(frozen=True)
class Record:
    record: str
    expr: str

    def render(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alerting rule; ``anchor`` is its section in docs/runbooks.md."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    anchor: str
    for_: str = ""

    def render(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_:
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{RUNBOOK_URL}#{self.anchor}",
        }
        return rule


@dataclasses.dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Record | Alert, ...]

    def render(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.render() for rule in self.rules]}


def budget(objective: float) -> str:
    """The error budget of an objective, as PromQL: 0.999 -> ``0.001``."""
    return f"{round(1 - objective, 10):g}"


def increased(selector: str, window: str) -> str:
    """A counter grew within ``window``, including a series born with a value above 0 (its
    first sample gives ``increase`` nothing to compare with)."""
    return (
        f"increase({selector}[{window}]) > 0\nor\n"
        f"({selector} > 0 unless {selector} offset {window})"
    )


def error_ratio(window: str) -> str:
    requests = "modelyard_requests_total"
    total = f"sum by ({SLO_BY}) (rate({requests}[{window}]))"
    errors = f'sum by ({SLO_BY}) (rate({requests}{{code=~"{ERROR_CODES}"}}[{window}]))'
    # "or total * 0": a model without any error series has a ratio of 0, not none.
    return f"(\n  {errors}\n  or\n  {total} * 0\n)\n/\n{total}"


def slow_ratio(window: str) -> str:
    histogram = "modelyard_request_duration_seconds"
    fast = f'sum by ({SLO_BY}) (rate({histogram}_bucket{{le="{LATENCY_THRESHOLD}"}}[{window}]))'
    total = f"sum by ({SLO_BY}) (rate({histogram}_count[{window}]))"
    return f"1 - (\n  {fast}\n  /\n  {total}\n)"


def burn(record: str, objective: float, pairs: Sequence[tuple[str, str, float]]) -> str:
    allowed = budget(objective)
    return "\nor\n".join(
        f"(\n  {record}{long} > ({rate:g} * {allowed})\n  and\n"
        f"  {record}{short} > ({rate:g} * {allowed})\n)"
        for long, short, rate in pairs
    )


def slo_records() -> Group:
    records = [Record(f"{ERRORS_RECORD}{w}", error_ratio(w)) for w in WINDOWS]
    records += [Record(f"{SLOW_RECORD}{w}", slow_ratio(w)) for w in WINDOWS]
    return Group("modelyard-slo.rules", tuple(records))


def slo_alerts() -> Group:
    ms = int(float(LATENCY_THRESHOLD) * 1000)
    where = "{{ $labels.namespace }}/{{ $labels.model }}"
    errors = f"{AVAILABILITY_OBJECTIVE:.1%} availability SLO (5xx and 429 responses)"
    latency = f"{LATENCY_OBJECTIVE:.0%} of requests within {ms} ms SLO"
    return Group(
        "modelyard-slo.alerts",
        (
            Alert(
                "ModelyardErrorBudgetFastBurn",
                burn(ERRORS_RECORD, AVAILABILITY_OBJECTIVE, FAST_BURN),
                "critical",
                "A model is burning its error budget fast.",
                f"{where} failed {{{{ $value | humanizePercentage }}}} of its requests over the "
                f"last hour or six: at this rate the month's budget of the {errors} is gone "
                "within days.",
                "modelyarderrorbudgetfastburn",
                "2m",
            ),
            Alert(
                "ModelyardErrorBudgetSlowBurn",
                burn(ERRORS_RECORD, AVAILABILITY_OBJECTIVE, SLOW_BURN),
                "warning",
                "A model is burning its error budget.",
                f"{where} failed {{{{ $value | humanizePercentage }}}} of its requests over the "
                f"last day or three, more than the {errors} allows.",
                "modelyarderrorbudgetslowburn",
                "15m",
            ),
            Alert(
                "ModelyardLatencyBudgetFastBurn",
                burn(SLOW_RECORD, LATENCY_OBJECTIVE, FAST_BURN),
                "critical",
                "A model is burning its latency budget fast.",
                f"{{{{ $value | humanizePercentage }}}} of the requests to {where} took longer "
                f"than {ms} ms over the last hour or six: at this rate the month's budget of the "
                f"{latency} is gone within days.",
                "modelyardlatencybudgetfastburn",
                "2m",
            ),
            Alert(
                "ModelyardLatencyBudgetSlowBurn",
                burn(SLOW_RECORD, LATENCY_OBJECTIVE, SLOW_BURN),
                "warning",
                "A model is burning its latency budget.",
                f"{{{{ $value | humanizePercentage }}}} of the requests to {where} took longer "
                f"than {ms} ms over the last day or three, more than the {latency} allows.",
                "modelyardlatencybudgetslowburn",
                "15m",
            ),
        ),
    )


def rollout_alerts() -> Group:
    md = "{{ $labels.namespace }}/{{ $labels.name }}"
    rolled_back = 'modelyard_rollouts_total{result="rolled_back"}'
    return Group(
        "modelyard-rollout.alerts",
        (
            Alert(
                "ModelyardCanaryRolledBack",
                increased(rolled_back, "10m"),
                "warning",
                "A canary was rolled back.",
                f"The canary of ModelDeployment {md} failed its analysis and was rolled back; "
                "the stable version serves all traffic.",
                "modelyardcanaryrolledback",
            ),
            Alert(
                "ModelyardRolloutStuck",
                'modelyard_rollout_phase{phase=~"Progressing|Paused|RollingBack"} == 1',
                "warning",
                "A rollout has not finished for an hour.",
                f"ModelDeployment {md} has been {{{{ $labels.phase }}}} for more than an hour.",
                "modelyardrolloutstuck",
                "1h",
            ),
            Alert(
                "ModelyardModelDeploymentFailed",
                'modelyard_rollout_phase{phase="Failed"} == 1',
                "critical",
                "A ModelDeployment serves nothing.",
                f"ModelDeployment {md} is Failed: no pod serves its model (verification, "
                "download, load or warm-up failed, or the pods cannot run).",
                "modelyardmodeldeploymentfailed",
                "5m",
            ),
            Alert(
                "ModelyardModelDeploymentDegraded",
                'modelyard_rollout_phase{phase="Degraded"} == 1',
                "warning",
                "A ModelDeployment is degraded.",
                f"ModelDeployment {md} has been Degraded for 15 minutes: a rollout was rolled "
                "back or some of its pods fail.",
                "modelyardmodeldeploymentdegraded",
                "15m",
            ),
        ),
    )


def runtime_alerts() -> Group:
    rejected = "modelyard_rejected_requests_total"
    pod = "{{ $labels.namespace }}/{{ $labels.pod }}"
    return Group(
        "modelyard-runtime.alerts",
        (
            Alert(
                "ModelyardRuntimeTargetDown",
                f'up{{job="{RUNTIME_JOB}"}} == 0',
                "warning",
                "A runtime pod does not answer scrapes.",
                f"Prometheus has not scraped runtime pod {pod} for 5 minutes: the pod is not "
                "running, not listening on 8080, or not reachable.",
                "modelyardruntimetargetdown",
                "5m",
            ),
            Alert(
                "ModelyardQueueSaturated",
                f"sum by (namespace, model, version, track, pod) (\n"
                f'  rate({rejected}{{reason="queue_full"}}[5m])\n) > 0',
                "warning",
                "A runtime's batching queue is full.",
                f"Runtime pod {pod} ({{{{ $labels.model }}}} {{{{ $labels.version }}}}, "
                '{{ $labels.track }}) has refused {{ printf "%.2f" $value }} requests/s with 429 '
                "(queue full) for 5 minutes.",
                "modelyardqueuesaturated",
                "5m",
            ),
            Alert(
                "ModelyardRequestsRejected",
                f"sum by (namespace, model, reason) (\n"
                f'  rate({rejected}{{reason!="queue_full"}}[5m])\n)\n'
                "/ on (namespace, model) group_left\n"
                "sum by (namespace, model) (rate(modelyard_requests_total[5m]))\n"
                "> 0.05",
                "warning",
                "A model rejects many requests.",
                "{{ $value | humanizePercentage }} of the requests to "
                "{{ $labels.namespace }}/{{ $labels.model }} were rejected with reason "
                "{{ $labels.reason }} for 10 minutes.",
                "modelyardrequestsrejected",
                "10m",
            ),
        ),
    )


def operator_alerts() -> Group:
    errors = 'modelyard_operator_reconcile_total{result="error"}'
    return Group(
        "modelyard-operator.alerts",
        (
            Alert(
                "ModelyardOperatorDown",
                f'absent(up{{job="{OPERATOR_JOB}"}} == 1)',
                "critical",
                "The modelyard operator is down.",
                "No modelyard-operator target has been up for 5 minutes: ModelDeployments are "
                "not reconciled and canaries are neither promoted nor rolled back.",
                "modelyardoperatordown",
                "5m",
            ),
            Alert(
                "ModelyardReconcileErrors",
                increased(errors, "10m"),
                "warning",
                "The operator failed to reconcile a ModelDeployment.",
                "The modelyard operator ({{ $labels.instance }}) gave up on a reconcile in the "
                "last 10 minutes: a spec it cannot apply, or an API error it cannot retry.",
                "modelyardreconcileerrors",
            ),
        ),
    )


def groups() -> tuple[Group, ...]:
    return (slo_records(), slo_alerts(), rollout_alerts(), runtime_alerts(), operator_alerts())


def alerts() -> tuple[Alert, ...]:
    return tuple(rule for group in groups() for rule in group.rules if isinstance(rule, Alert))


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer expressions) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

HEADER: Final = "# Generated by `make alerts` from hack/alerts.py; do not edit.\n"


def dump(document: dict[str, Any]) -> str:
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=4096)


def rule_file() -> dict[str, Any]:
    return {"groups": [group.render() for group in groups()]}


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "modelyard",
            "labels": {
                "app.kubernetes.io/name": "modelyard",
                "app.kubernetes.io/part-of": "modelyard",
            },
        },
        "spec": rule_file(),
    }


def outputs() -> dict[Path, str]:
    return {RULES_FILE: dump(rule_file()), PROMETHEUS_RULE_FILE: dump(prometheus_rule())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the rule files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        target = args.root / path
        if args.write:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        elif not target.exists() or target.read_text() != text:
            stale.append(str(path))
    if stale:
        print(f"stale: {', '.join(stale)}; run `make alerts`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

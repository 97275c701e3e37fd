"""The Rollouts dashboard: ModelDeployment phases, canary weight and analysis checks, finished
rollouts, stable vs canary as the analysis sees them, and the operator's reconciles.

Pure: ``rollouts()`` returns Grafana's JSON for ``dashboards/rollouts.json``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import statetimeline
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from hack.grafana.kit import (
    DATASOURCE,
    OPERATOR_JOB,
    RATE,
    SERVER_ERRORS,
    Panel,
    base,
    finish,
    legend,
    quantile,
    query_variable,
    rate,
    ratio,
    selector,
    single_stat,
    target,
    thresholds,
    timeseries,
    with_sections,
)

# Every phase of design §6.1, in the order of their codes in the phase timeline.
PHASES: Final = ("Pending", "Progressing", "Paused", "Ready", "Degraded", "RollingBack", "Failed")
PHASE_COLORS: Final = {
    "Pending": "blue",
    "Progressing": "yellow",
    "Paused": "purple",
    "Ready": "green",
    "Degraded": "orange",
    "RollingBack": "dark-orange",
    "Failed": "red",
}


ROLLOUT: Final = 'namespace=~"$namespace", name=~"$modeldeployment"'
RUNTIME_OF_ROLLOUT: Final = (
    'namespace=~"$namespace", model=~"$modeldeployment", version=~"$version"'
)


def phase_code(f: str) -> str:
    """One series per ModelDeployment whose value is its phase's code (1 + index in PHASES)."""
    parts = "\n  or ".join(
        f"{selector('modelyard_rollout_phase', f, 'phase=' + json.dumps(phase))} * {code}"
        for code, phase in enumerate(PHASES, start=1)
    )
    return f"max by (namespace, name) (\n  {parts}\n)"


def phase_mappings() -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            options={
                str(code): model.ValueMappingResult(text=phase, color=PHASE_COLORS[phase])
                for code, phase in enumerate(PHASES, start=1)
            }
        )
    ]


def rollout_state(f: str) -> list[Panel]:
    return [
        single_stat(
            "ModelDeployments by phase", "How many ModelDeployments are in each phase now.",
            "short",
            [target(f"count by (phase) ({selector('modelyard_rollout_phase', f)} == 1)",
                    "{{phase}}", "A")],
            w=8, h=6,
        ),
        statetimeline.Panel()
        .title("Phase")
        .description("The phase of each ModelDeployment over time (status.phase).")
        .datasource(DATASOURCE)
        .span(16)
        .height(6)
        .mappings(phase_mappings())
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.8)
        .legend(legend())
        .with_target(target(phase_code(f), "{{namespace}}/{{name}}", "A")),
    ]  # fmt: skip


def rollout_canary(f: str) -> list[Panel]:
    return [
        timeseries(
            "Canary weight",
            "Share of traffic (percent of ready pods) on the canary while a rollout runs.",
            "percent",
            [target(f"max by (namespace, name) ({selector('modelyard_canary_weight', f)})",
                    "{{namespace}}/{{name}}", "A")],
            w=8,
        ),
        timeseries(
            "Analysis checks",
            "Canary analysis checks by metric and result (pass, fail, inconclusive).",
            "short",
            [target(f"sum by (name, metric, result) (increase("
                    f"{selector('modelyard_analysis_checks_total', f)}[{RATE}]))",
                    "{{name}} {{metric}} {{result}}", "A")],
            w=8,
        ),
        single_stat(
            "Rollouts finished",
            "Rollouts that ended in the time range: promoted, rolled_back or aborted.",
            "short",
            [target(f"sum by (result) (increase("
                    f"{selector('modelyard_rollouts_total', f)}[$__range]))", "{{result}}",
                    "A", instant=True)],
            w=8, h=8,
        ),
    ]  # fmt: skip


def rollout_runtime(f: str) -> list[Panel]:
    requests, duration = "modelyard_requests_total", "modelyard_request_duration_seconds"
    by = "track, version"
    return [
        timeseries(
            "Requests by track and version",
            "Requests per second served by the stable and the canary version.",
            "reqps",
            [target(f"sum by ({by}) ({rate(requests, f)})", "{{track}} {{version}}", "A")],
            w=8,
        ),
        timeseries(
            "Server error ratio by track and version",
            "5xx and 429 responses as a share of requests: the canary analysis' error rate.",
            "percentunit",
            [target(ratio(requests, f, f'code=~"{SERVER_ERRORS}"', by), "{{track}} {{version}}",
                    "A")],
            w=8,
        ),
        timeseries(
            "p99 latency by track and version",
            "99th percentile request duration: the canary analysis' latency.",
            "s",
            [target(quantile(0.99, duration, f, by), "{{track}} {{version}}", "A")],
            w=8,
        ),
    ]  # fmt: skip


def rollout_operator() -> list[Panel]:
    reconciles = "modelyard_operator_reconcile_total"
    duration = "modelyard_operator_reconcile_duration_seconds"
    return [
        single_stat(
            "Operator up", f"Operator processes answering scrapes (job {OPERATOR_JOB}).",
            "short",
            [target(f'sum(up{{job="{OPERATOR_JOB}"}})', "up", "A")],
            w=4, h=8, limits=thresholds((None, "red"), (1, "green")),
        ),
        timeseries(
            "Reconciles by result",
            "Reconciles per second: success, retry (a problem the operator waits out) and "
            "error (given up).",
            "ops",
            [target(f"sum by (result) ({rate(reconciles, '')})", "{{result}}", "A")],
            w=8,
        ),
        timeseries(
            "Reconcile latency",
            "Time one reconcile took, from handler start to children applied (p50, p99).",
            "s",
            [target(quantile(0.5, duration, ""), "p50", "A"),
             target(quantile(0.99, duration, ""), "p99", "B")],
            w=8,
        ),
        single_stat(
            "Reconcile errors",
            "Reconciles given up (error) and retried (retry) in the time range.",
            "short",
            [target(f'sum(increase({reconciles}{{result="error"}}[$__range])) or vector(0)',
                    "errors", "A", instant=True),
             target(f'sum(increase({reconciles}{{result="retry"}}[$__range])) or vector(0)',
                    "retries", "B", instant=True)],
            w=4, h=8, limits=thresholds((None, "green"), (1, "orange")),
        ),
    ]  # fmt: skip


def rollouts() -> dict[str, Any]:
    phase = "modelyard_rollout_phase"
    board = (
        base(
            "modelyard-rollouts",
            "modelyard / Rollouts",
            "ModelDeployment phases, canary weight and analysis, promotions and rollbacks, "
            "stable vs canary as the analysis sees them, and the operator's reconciles.",
        )
        .with_variable(query_variable(
            "namespace", "Namespace", f"label_values({phase}, namespace)"))
        .with_variable(query_variable(
            "modeldeployment", "ModelDeployment",
            f'label_values({phase}{{namespace=~"$namespace"}}, name)'))
        .with_variable(query_variable(
            "version", "Version",
            'label_values(modelyard_model_info{namespace=~"$namespace", '
            'model=~"$modeldeployment"}, version)'))
        .annotation(
            builders.AnnotationQuery()
            .name("Rollouts finished")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("purple")
            .expr(f"sum by (namespace, name, result) (increase("
                  f"{selector('modelyard_rollouts_total', ROLLOUT)}[2m])) > 0")
        )
    )  # fmt: skip
    sections = (
        ("Rollout state", rollout_state(ROLLOUT)),
        ("Canary", rollout_canary(ROLLOUT)),
        ("Stable vs canary (runtime)", rollout_runtime(RUNTIME_OF_ROLLOUT)),
        ("Operator", rollout_operator()),
    )
    return finish(with_sections(board, sections))

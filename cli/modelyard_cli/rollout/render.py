"""What ``modelyard rollout status`` and ``history`` print. Pure: a ModelDeployment and ``now``
in, lines out."""

from __future__ import annotations

import datetime

from modelyard_operator.api.timefmt import parse_time
from modelyard_operator.api.v1alpha1 import ModelDeployment, seconds


def ago(when: str, now: datetime.datetime) -> str:
    if not when:
        return "-"
    delta = int((now - parse_time(when)).total_seconds())
    if delta < 120:
        return f"{delta}s ago"
    if delta < 7200:
        return f"{delta // 60}m ago"
    return f"{delta // 3600}h ago"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def status_lines(md: ModelDeployment, now: datetime.datetime) -> list[str]:
    status, spec = md.status, md.spec
    head = f"{md.metadata.name} ({md.metadata.namespace}): {status.phase}"
    stable = status.stable
    lines = [head, f"  stable:  {stable.version or '-'} ({stable.revision or '-'}), "
                   f"{stable.ready_replicas} ready"]  # fmt: skip
    canary = status.canary
    if canary.revision:
        lines += _canary_lines(md, now)
    elif status.rolled_back is not None:
        marker = status.rolled_back
        when = ago(marker.at, now)
        lines.append(f"  {marker.result}: {marker.version} ({marker.revision}) {when}: "
                     f"{marker.reason}")  # fmt: skip
        lines.append("  it stays rolled back until the spec changes, or `rollout retry`")
    else:
        lines.append("  no canary is running")
    lines.append("  conditions: " + ", ".join(
        f"{c.type}={c.status} ({c.reason})" for c in status.conditions))  # fmt: skip
    if spec.rollout.strategy != "Canary":
        lines.append(f"  strategy: {spec.rollout.strategy}")
    return lines


def _canary_lines(md: ModelDeployment, now: datetime.datetime) -> list[str]:
    canary, spec = md.status.canary, md.spec
    steps = spec.rollout.resolved_steps()
    step = steps[min(max(canary.step, 1), len(steps)) - 1]
    paused = "paused (action)" if canary.paused else (
        "paused (spec.rollout.paused)" if spec.rollout.paused else "")  # fmt: skip
    lines = [
        f"  canary:  {canary.version} ({canary.revision}), {canary.state}"
        + (f", {paused}" if paused else ""),
        f"  step {canary.step}/{canary.steps}: {canary.desired_weight}% desired, "
        f"{canary.weight}% achieved ({canary.ready_replicas}/{canary.replicas} canary pods ready)",
    ]
    if canary.step_started_at:
        left = seconds(step.pause) - (now - parse_time(canary.step_started_at)).total_seconds()
        lines.append(f"  step reached {ago(canary.step_started_at, now)}, pause {step.pause}"
                     + (f" ({left:.0f}s left)" if left > 0 else " (over)"))  # fmt: skip
    else:
        lines.append("  scaling the canary to the step's weight")
    threshold = spec.rollout.analysis.failure_threshold
    lines.append(f"  failed checks: {canary.failed_checks}/{threshold}; started "
                 f"{ago(canary.started_at, now)}")  # fmt: skip
    if canary.reason:
        lines.append(f"  {canary.ending}: {canary.reason}")
    last = canary.last_analysis
    if last is None:
        lines.append("  checks: none yet")
        return lines
    lines.append(f"  checks ({ago(last.time, now)}): {last.result}")
    width = max((len(c.metric) for c in last.checks), default=6)
    for check in last.checks:
        lines.append(f"    {check.metric:<{width}}  {check.result:<12} {_value(check.value):>10}"
                     f"  {check.bound:<28} {check.message}")  # fmt: skip
    return lines


def history_lines(md: ModelDeployment) -> list[str]:
    rows = [("VERSION", "REVISION", "RESULT", "STARTED", "FINISHED", "REASON")]
    rows += [(h.version, h.revision, h.result, h.started_at, h.finished_at or "-", h.reason)
             for h in md.status.history]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return ["  ".join(f"{cell:<{w}}" for cell, w in zip(row[:5], widths, strict=True)) + "  "
            + row[5] for row in rows]  # fmt: skip

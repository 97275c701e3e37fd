"""A plan's starting point (the status's tracks kept as they are) and the Deployments a
stepping, promoting or rolling-back canary needs, with when to look again."""

from __future__ import annotations

import dataclasses

from modelyard_operator.api.v1alpha1 import CanaryStatus, Step, seconds
from modelyard_operator.reconcile.rollout.model import (
    SAFETY_REQUEUE,
    Apply,
    Keep,
    Plan,
    Remove,
    Scale,
    Situation,
    Target,
)
from modelyard_operator.reconcile.rollout.sizing import (
    achieved_weight,
    canary_replicas,
    elapsed,
    full_size,
    stable_size,
    steps_of,
)


def base_plan(situation: Situation, **changes: object) -> Plan:
    """A plan that keeps the status's tracks and the rolled-back marker as they are."""
    status = situation.md.status
    fields: dict[str, object] = {
        "stable": Keep(),
        "canary": Remove(),
        "canary_status": CanaryStatus(),
        "stable_revision": status.stable.revision,
        "stable_version": status.stable.version,
        "rolled_back": status.rolled_back,
    }
    fields.update(changes)
    return Plan(**fields)  # type: ignore[arg-type]


def with_targets(situation: Situation, base: Plan) -> Plan:
    """Deployments for a stepping or promoting canary: the canary at its step's size, the
    stable shrunk only by canary pods that are ready (without an autoscaler), so capacity
    never dips; requeue at the next moment something is due."""
    md, canary = situation.md, base.canary_status
    if canary.state == "Promoting":
        return promoting_after_switch(situation, base)
    if canary.state == "RollingBack":
        size = stable_size(md, situation.stable, canary)
        return dataclasses.replace(
            base, stable=Keep() if size is None else Scale(size), canary=Keep(), requeue_after=0.0
        )
    steps = steps_of(md)
    step = steps[min(canary.step, len(steps)) - 1]
    want = canary_replicas(md, situation.stable, step.weight)
    size = full_size(md, situation.stable)
    ready = min(situation.canary.ready, want)
    stable_target: Target = Keep() if size is None else Scale(max(1, size - ready))
    weight = achieved_weight(situation.stable.ready, situation.canary.ready)
    status = canary.model_copy(
        update={
            "replicas": want,
            "ready_replicas": situation.canary.ready,
            "weight": weight,
            "steps": len(steps),
        }
    )
    return dataclasses.replace(
        base,
        stable=stable_target,
        canary=Apply(want),
        canary_status=status,
        requeue_after=next_due(situation, status, step),
    )


def promoting_after_switch(situation: Situation, base: Plan) -> Plan:
    """Right after the decision to promote: the stable starts moving in the same step."""
    size = full_size(situation.md, situation.stable)
    return dataclasses.replace(base, stable=Apply(size), canary=Keep(), requeue_after=0.0)


def next_due(situation: Situation, canary: CanaryStatus, step: Step) -> float:
    """Seconds until something is due: the next analysis, the end of the pause, the deadline."""
    md, now = situation.md, situation.now
    candidates = [SAFETY_REQUEUE]
    if md.spec.rollout.resolved_metrics():
        interval = seconds(md.spec.rollout.analysis.interval)
        last = canary.last_analysis
        due = interval - elapsed(now, last.time) if last and last.time else 0.0
        candidates.append(due)
    if canary.step_started_at:
        candidates.append(seconds(step.pause) - elapsed(now, canary.step_started_at))
    deadline = seconds(md.spec.progress_deadline) + seconds(step.pause)
    candidates.append(deadline - elapsed(now, canary.last_progress_at))
    return max(0.0, min(candidates))

"""A canary steps: record the analysis (a failed one counts once), reach the step's weight,
wait its pause, move on when the latest analysis passed; actions, a failing pod, the failure
threshold and the progress deadline end it."""

from __future__ import annotations

import dataclasses

from modelyard_operator.api.timefmt import parse_time, rfc3339
from modelyard_operator.api.v1alpha1 import CanaryStatus, Step, seconds
from modelyard_operator.reconcile.rollout.endings import end, promote
from modelyard_operator.reconcile.rollout.idle import start
from modelyard_operator.reconcile.rollout.messages import failures, inconclusive, stalled
from modelyard_operator.reconcile.rollout.model import Ending, Event, Plan, Situation
from modelyard_operator.reconcile.rollout.sizing import canary_replicas, elapsed, steps_of
from modelyard_operator.reconcile.rollout.targets import base_plan, with_targets


def stepping(situation: Situation) -> Plan:
    md, now = situation.md, situation.now
    current = md.status.canary
    if situation.revision != current.revision:
        return respec(situation)
    events: list[Event] = []
    canary = current
    action = situation.action
    taken = action if action in ("pause", "resume") else None
    if action == "abort":
        return end(situation, "Aborted", "aborted by the abort action", action_taken=action)
    if action == "promote":
        return promote(situation, "promoted by the promote action", action_taken=action)
    if action in ("pause", "resume"):
        canary = canary.model_copy(update={"paused": action == "pause"})
        events.append(
            Event(
                "RolloutPaused" if action == "pause" else "RolloutResumed",
                f"{action}d by the {action} action",
            )
        )
    if situation.canary_failure:
        return end(
            situation, "RolledBack", f"a canary pod cannot serve: {situation.canary_failure}"
        )
    canary, judged = judge(situation, canary)
    events += judged
    threshold = md.spec.rollout.analysis.failure_threshold
    if canary.failed_checks >= threshold:
        last = canary.last_analysis
        reason = failures(last) if last else "checks failed"
        return end(
            situation,
            "RolledBack",
            f"{canary.failed_checks} failed checks (threshold {threshold}); last: {reason}",
            canary=canary,
        )
    steps = steps_of(md)
    index = min(canary.step, len(steps)) - 1
    step = steps[index]
    want = canary_replicas(md, situation.stable, step.weight)
    if situation.canary.ready >= want and not canary.step_started_at:
        canary = canary.model_copy(update={"step_started_at": rfc3339(now)})
        events.append(
            Event(
                "CanaryStepReached",
                f"step {canary.step}/{len(steps)}: {situation.canary.ready} canary "
                f"pod(s) ready for {step.weight}%",
            )
        )
    deadline = seconds(md.spec.progress_deadline) + seconds(step.pause)
    since_progress = elapsed(now, canary.last_progress_at)
    if since_progress > deadline:
        why = stalled(situation, canary, want)
        return end(
            situation,
            "RolledBack",
            f"no progress for {md.spec.progress_deadline} past the step's pause: {why}",
            canary=canary,
        )
    paused = md.spec.rollout.paused or canary.paused
    if not paused and step_done(situation, canary, step):
        if canary.step >= len(steps):
            return promote(
                situation,
                f"passed all {len(steps)} steps",
                canary=canary,
                events=tuple(events),
                action_taken=taken,
            )
        following = steps[canary.step]
        canary = canary.model_copy(
            update={
                "step": canary.step + 1,
                "desired_weight": following.weight,
                "step_started_at": "",
                "last_progress_at": rfc3339(now),
            }
        )
        events.append(
            Event(
                "CanaryStep",
                f"step {canary.step}/{len(steps)}: {following.weight}% to {canary.version}",
            )
        )
    base = base_plan(
        situation,
        canary_status=canary,
        rolled_back=None,
        paused=paused,
        events=tuple(events),
        action_taken=taken,
    )
    return with_targets(situation, base)


def judge(situation: Situation, canary: CanaryStatus) -> tuple[CanaryStatus, list[Event]]:
    """Record the analysis run for this step (if any): a failed one counts once."""
    analysis = situation.analysis
    if analysis is None:
        return canary, []
    failed = canary.failed_checks + (1 if analysis.result == "fail" else 0)
    updated = canary.model_copy(update={"last_analysis": analysis, "failed_checks": failed})
    if analysis.result == "fail":
        threshold = situation.md.spec.rollout.analysis.failure_threshold
        return updated, [
            Event(
                "AnalysisFailed",
                f"check failed ({failed}/{threshold}): {failures(analysis)}",
                warning=True,
            )
        ]
    previous = canary.last_analysis
    if analysis.result == "inconclusive" and (
        previous is None or previous.result != "inconclusive"
    ):
        return updated, [Event("AnalysisInconclusive", inconclusive(analysis))]
    return updated, []


def step_done(situation: Situation, canary: CanaryStatus, step: Step) -> bool:
    """The step's weight was reached, its pause is over, and the latest analysis (taken after
    the weight was reached) passed, unless there are no checks at all."""
    if not canary.step_started_at:
        return False
    reached = parse_time(canary.step_started_at)
    if (situation.now - reached).total_seconds() < seconds(step.pause):
        return False
    if not situation.md.spec.rollout.resolved_metrics():
        return True
    last = canary.last_analysis
    return last is not None and last.result == "pass" and parse_time(last.time) >= reached


def respec(situation: Situation) -> Plan:
    """The spec moved on while a canary ran: back to the stable if it asks for the stable,
    else the canary restarts with the new revision."""
    md = situation.md
    current = md.status.canary
    if situation.revision == md.status.stable.revision:
        return end(situation, "Superseded", "the spec went back to the stable revision")
    ending = Ending(
        current.revision,
        current.version,
        "Superseded",
        f"replaced by {md.spec.model.version} ({situation.revision})",
    )
    restarted = start(situation, retried=False)
    return dataclasses.replace(restarted, ending=ending)

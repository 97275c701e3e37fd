"""The rollout state machine: (spec, status, observed tracks, verdicts, action, now) -> next step.

Pure: no I/O, no clock (``now`` is passed in). Everything a rollout needs to resume lives in
``status`` (``status.canary``, ``status.rolledBack``, ``status.stable``), never in operator
memory, so an operator killed at any moment continues where it was: a step is entered once, a
check is counted once (its result and the failure count are written in the same status update).

A new revision D while revision S is stable (and serving) becomes a canary:

    Stepping (step 1..n: weight reached -> pause -> latest analysis passed -> next step)
        -> Promoting (the stable Deployment moves to D, then the canary goes)  => Promoted
        -> RollingBack (the stable back to full size first, then the canary goes)
             => RolledBack (failed checks, a failing canary pod, no progress) | Aborted | Superseded

The first revision, ``strategy: Immediate``, and a stable with no ready pod roll out directly
(a rolling update of the stable Deployment). A rolled-back revision stays rolled back until the
spec asks for another revision, or the ``retry`` action. ``plan`` says what each track's
Deployment should become (``Apply`` from the spec, ``Scale`` only, ``Keep`` or ``Remove``); the
handlers do the writing.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Final, Literal

from modelyard_operator.api.actions import ACTIONS
from modelyard_operator.api.timefmt import parse_time, rfc3339
from modelyard_operator.api.v1alpha1 import (
    AnalysisStatus,
    CanaryStatus,
    ModelDeployment,
    RolledBack,
    Step,
    seconds,
)
from modelyard_operator.reconcile.observed import Track

SAFETY_REQUEUE: Final = 30.0  # seconds: look again at an active rollout at least this often


@dataclasses.dataclass(frozen=True, slots=True)
class Apply:
    """Render the track's Deployment from the spec (the desired revision); ``replicas`` None
    leaves the count to the autoscaler."""

    replicas: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    """Leave the Deployment's template as it is (it holds another revision than the spec's);
    set only its replicas."""

    replicas: int


@dataclasses.dataclass(frozen=True, slots=True)
class Keep:
    """Change nothing."""


@dataclasses.dataclass(frozen=True, slots=True)
class Remove:
    """Delete the Deployment (if it exists)."""


Target = Apply | Scale | Keep | Remove


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Ending:
    """How a rollout of ``revision`` ended, for the history and the metrics."""

    revision: str
    version: str
    result: Literal["Promoted", "RolledBack", "Aborted", "Superseded"]
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Situation:
    md: ModelDeployment
    revision: str  # what the spec asks for now
    stable: Track
    canary: Track
    canary_failure: str | None = None  # "Reason: message" of a canary pod that cannot start
    analysis: AnalysisStatus | None = None  # checks run for this step, if they were due
    action: str | None = None  # the action annotation's value, if any
    now: datetime.datetime = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    stable: Target
    canary: Target
    canary_status: CanaryStatus
    stable_revision: str  # status.stable after this step
    stable_version: str
    rolled_back: RolledBack | None
    paused: bool = False  # held (spec.rollout.paused or the pause action)
    started: bool = False  # a rollout of the spec's revision began: a new history entry
    ending: Ending | None = None
    events: tuple[Event, ...] = ()
    action_taken: str | None = None  # the annotation to remove (acted on or refused)
    requeue_after: float | None = None


def steps_of(md: ModelDeployment) -> list[Step]:
    return md.spec.rollout.resolved_steps()


def canary_mode(md: ModelDeployment) -> bool:
    """Whether new revisions go through a canary at all."""
    return md.spec.rollout.strategy == "Canary"


def full_size(md: ModelDeployment, stable: Track) -> int | None:
    """The stable's full size: spec.replicas, or None with an autoscaler (it decides)."""
    return None if md.spec.autoscaling else md.spec.replicas


def canary_replicas(md: ModelDeployment, stable: Track, weight: int) -> int:
    """Canary pods for ``weight`` percent: rounded up, at least one; with an autoscaler, the
    stable's current size times the weight."""
    base = stable.replicas if md.spec.autoscaling else md.spec.replicas
    base = max(base, 1)
    return max(1, min(base, math.ceil(base * weight / 100)))


def achieved_weight(stable_ready: int, canary_ready: int) -> int:
    total = stable_ready + canary_ready
    return round(100 * canary_ready / total) if total else 0


def analysis_due(situation: Situation) -> bool:
    """Whether the handler should run the checks before calling ``plan``."""
    status = situation.md.status.canary
    if status.state != "Stepping" or status.revision != situation.revision:
        return False
    if not situation.md.spec.rollout.resolved_metrics() or situation.canary.ready < 1:
        return False
    last = status.last_analysis
    if last is None or not last.time:
        return True
    interval = seconds(situation.md.spec.rollout.analysis.interval)
    return (situation.now - parse_time(last.time)).total_seconds() >= interval


def plan(situation: Situation) -> Plan:
    """The next step of the rollout. An action that does not apply is removed with a Warning."""
    return _refuse_action(situation, _decide(situation))


def _decide(situation: Situation) -> Plan:
    md, status = situation.md, situation.md.status
    state = status.canary.state
    if state == "Stepping":
        return _stepping(situation)
    if state == "Promoting":
        return _promoting(situation)
    if state == "RollingBack":
        return _rolling_back(situation)
    stable_rev = status.stable.revision
    if situation.revision == stable_rev or not stable_rev:
        return _steady(situation)
    if not canary_mode(md) or situation.stable.ready < 1:
        return _direct(situation)
    rolled = status.rolled_back
    if rolled is not None and rolled.revision == situation.revision:
        return _stay_rolled_back(situation, rolled)
    return _start(situation, retried=False)


# -- no canary running ---------------------------------------------------------------------


def _base(situation: Situation, **changes: object) -> Plan:
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


def _steady(situation: Situation) -> Plan:
    """The spec asks for the stable revision (or nothing is stable yet): one Deployment."""
    md, stable = situation.md, situation.stable
    stable_rev, stable_version = md.status.stable.revision, md.status.stable.version
    if stable.complete and stable.revision == situation.revision:
        stable_rev, stable_version = situation.revision, md.spec.model.version
    rolled = md.status.rolled_back
    keep_marker = rolled if rolled is not None and rolled.revision == situation.revision else None
    return _base(
        situation,
        stable=Apply(full_size(md, stable)),
        stable_revision=stable_rev,
        stable_version=stable_version,
        rolled_back=keep_marker,
    )


def _direct(situation: Situation) -> Plan:
    """A rolling update of the stable Deployment (strategy Immediate, or nothing serving)."""
    plan_ = _steady(situation)
    return dataclasses.replace(plan_, rolled_back=None)


def _stay_rolled_back(situation: Situation, rolled: RolledBack) -> Plan:
    """The spec still asks for a revision that was rolled back: serve the stable, full size."""
    if situation.action == "retry":
        return _start(situation, retried=True)
    md = situation.md
    size = full_size(md, situation.stable)
    return _base(situation, stable=Keep() if size is None else Scale(size), rolled_back=rolled)


def _start(situation: Situation, *, retried: bool) -> Plan:
    md, now = situation.md, situation.now
    steps = steps_of(md)
    paused = md.spec.rollout.paused
    version = md.spec.model.version
    if paused:
        # Held before the first step: nothing of the new revision runs yet.
        size = full_size(md, situation.stable)
        return _base(
            situation,
            stable=Keep() if size is None else Scale(size),
            rolled_back=None,
            paused=True,
            requeue_after=None,
        )
    status = CanaryStatus(
        version=version,
        revision=situation.revision,
        state="Stepping",
        step=1,
        steps=len(steps),
        desired_weight=steps[0].weight,
        started_at=rfc3339(now),
        last_progress_at=rfc3339(now),
    )
    verb = "retrying" if retried else "starting"
    event = Event(
        "CanaryStarted",
        f"{verb} the canary of {version} ({situation.revision}): step 1/{len(steps)} at "
        f"{steps[0].weight}%",
    )
    started = _base(
        situation,
        rolled_back=None,
        canary_status=status,
        started=True,
        events=(event,),
        action_taken="retry" if retried else None,
    )
    return _with_targets(situation, started)


# -- a canary runs ----------------------------------------------------------------------------


def _stepping(situation: Situation) -> Plan:
    md, now = situation.md, situation.now
    current = md.status.canary
    if situation.revision != current.revision:
        return _respec(situation)
    events: list[Event] = []
    canary = current
    action = situation.action
    taken = action if action in ("pause", "resume") else None
    if action == "abort":
        return _end(situation, "Aborted", "aborted by the abort action", action_taken=action)
    if action == "promote":
        return _promote(situation, "promoted by the promote action", action_taken=action)
    if action in ("pause", "resume"):
        canary = canary.model_copy(update={"paused": action == "pause"})
        events.append(
            Event(
                "RolloutPaused" if action == "pause" else "RolloutResumed",
                f"{action}d by the {action} action",
            )
        )
    if situation.canary_failure:
        return _end(
            situation, "RolledBack", f"a canary pod cannot serve: {situation.canary_failure}"
        )
    canary, judged = _judge(situation, canary)
    events += judged
    threshold = md.spec.rollout.analysis.failure_threshold
    if canary.failed_checks >= threshold:
        last = canary.last_analysis
        reason = _failures(last) if last else "checks failed"
        return _end(
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
    since_progress = _elapsed(now, canary.last_progress_at)
    if since_progress > deadline:
        why = _stalled(situation, canary, want)
        return _end(
            situation,
            "RolledBack",
            f"no progress for {md.spec.progress_deadline} past the step's pause: {why}",
            canary=canary,
        )
    paused = md.spec.rollout.paused or canary.paused
    if not paused and _step_done(situation, canary, step):
        if canary.step >= len(steps):
            return _promote(
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
    base = _base(
        situation,
        canary_status=canary,
        rolled_back=None,
        paused=paused,
        events=tuple(events),
        action_taken=taken,
    )
    return _with_targets(situation, base)


def _judge(situation: Situation, canary: CanaryStatus) -> tuple[CanaryStatus, list[Event]]:
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
                f"check failed ({failed}/{threshold}): {_failures(analysis)}",
                warning=True,
            )
        ]
    previous = canary.last_analysis
    if analysis.result == "inconclusive" and (
        previous is None or previous.result != "inconclusive"
    ):
        return updated, [Event("AnalysisInconclusive", _inconclusive(analysis))]
    return updated, []


def _step_done(situation: Situation, canary: CanaryStatus, step: Step) -> bool:
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


def _respec(situation: Situation) -> Plan:
    """The spec moved on while a canary ran: back to the stable if it asks for the stable,
    else the canary restarts with the new revision."""
    md = situation.md
    current = md.status.canary
    if situation.revision == md.status.stable.revision:
        return _end(situation, "Superseded", "the spec went back to the stable revision")
    ending = Ending(
        current.revision,
        current.version,
        "Superseded",
        f"replaced by {md.spec.model.version} ({situation.revision})",
    )
    restarted = _start(situation, retried=False)
    return dataclasses.replace(restarted, ending=ending)


def _promote(
    situation: Situation,
    reason: str,
    *,
    canary: CanaryStatus | None = None,
    events: tuple[Event, ...] = (),
    action_taken: str | None = None,
) -> Plan:
    now = rfc3339(situation.now)
    current = canary or situation.md.status.canary
    promoting = current.model_copy(
        update={
            "state": "Promoting",
            "ending": "Promoted",
            "reason": reason,
            "last_progress_at": now,
        }
    )
    event = Event("Promoting", f"promoting {current.version}: {reason}")
    base = _base(
        situation,
        canary_status=promoting,
        rolled_back=None,
        events=(*events, event),
        action_taken=action_taken,
    )
    return _with_targets(situation, base)


def _end(
    situation: Situation,
    result: Literal["RolledBack", "Aborted", "Superseded"],
    reason: str,
    *,
    canary: CanaryStatus | None = None,
    action_taken: str | None = None,
) -> Plan:
    """Start rolling back: the stable first, then the canary goes (``_rolling_back``)."""
    current = canary or situation.md.status.canary
    rolling = current.model_copy(
        update={
            "state": "RollingBack",
            "ending": result,
            "reason": reason,
            "last_progress_at": rfc3339(situation.now),
        }
    )
    verb = {"RolledBack": "rolling back", "Aborted": "aborting", "Superseded": "removing"}[result]
    event = Event(
        "RollingBack",
        f"{verb} the canary {current.version}: {reason}",
        warning=result != "Superseded",
    )
    base = _base(situation, canary_status=rolling, events=(event,), action_taken=action_taken)
    return _with_targets(situation, base)


def _promoting(situation: Situation) -> Plan:
    """The stable Deployment rolls to the canary's revision; then the canary goes."""
    md, canary = situation.md, situation.md.status.canary
    stable = situation.stable
    size = full_size(md, stable)
    if situation.revision == canary.revision:
        target: Target = Apply(size)
    elif stable.revision == canary.revision:
        target = Keep() if size is None else Scale(size)  # the update is under way: let it finish
    else:
        return _end(situation, "Superseded", "the spec moved on before the promotion began")
    wanted = stable.replicas if size is None else size
    done = stable.revision == canary.revision and stable.complete and stable.ready >= wanted
    if not done:
        return _base(
            situation,
            stable=target,
            canary=Keep(),
            canary_status=canary,
            rolled_back=None,
            requeue_after=SAFETY_REQUEUE,
        )
    ending = Ending(canary.revision, canary.version, "Promoted", canary.reason)
    event = Event("Promoted", f"{canary.version} ({canary.revision}) is stable: {canary.reason}")
    return _base(
        situation,
        stable=target,
        canary=Remove(),
        stable_revision=canary.revision,
        stable_version=canary.version,
        rolled_back=None,
        ending=ending,
        events=(event,),
    )


def _rolling_back(situation: Situation) -> Plan:
    """The stable back to its full size first; once it is ready (or the deadline passed) the
    canary goes and the rollback is recorded."""
    md, canary, stable = situation.md, situation.md.status.canary, situation.stable
    size = full_size(md, stable)
    stable_target: Target = Keep() if size is None else Scale(size)
    wanted = stable.replicas if size is None else size
    restored = stable.ready >= wanted
    overdue = _elapsed(situation.now, canary.last_progress_at) > seconds(md.spec.progress_deadline)
    if not restored and not overdue:
        return _base(
            situation,
            stable=stable_target,
            canary=Keep(),
            canary_status=canary,
            requeue_after=SAFETY_REQUEUE,
        )
    result = (
        canary.ending
        if canary.ending in ("RolledBack", "Aborted", "Superseded")
        else ("RolledBack")
    )
    ending = Ending(canary.revision, canary.version, result, canary.reason)
    events = [
        Event(
            result,
            f"{canary.version} ({canary.revision}): {canary.reason}",
            warning=result != "Superseded",
        )
    ]
    if not restored:
        events.append(
            Event(
                "StableNotRestored",
                f"the stable has {stable.ready}/{wanted} ready "
                "pods after the progress deadline; removing the canary anyway",
                warning=True,
            )
        )
    marker = None
    if result in ("RolledBack", "Aborted"):
        marker = RolledBack(
            version=canary.version,
            revision=canary.revision,
            result=result,
            reason=canary.reason,
            at=rfc3339(situation.now),
        )
    return _base(
        situation,
        stable=stable_target,
        canary=Remove(),
        rolled_back=marker,
        ending=ending,
        events=tuple(events),
    )


# -- targets, actions, messages -----------------------------------------------------------------


def _with_targets(situation: Situation, base: Plan) -> Plan:
    """Deployments for a stepping or promoting canary: the canary at its step's size, the
    stable shrunk only by canary pods that are ready (without an autoscaler), so capacity
    never dips; requeue at the next moment something is due."""
    md, canary = situation.md, base.canary_status
    if canary.state == "Promoting":
        return _promoting_after_switch(situation, base)
    if canary.state == "RollingBack":
        size = full_size(md, situation.stable)
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
        requeue_after=_next_due(situation, status, step),
    )


def _promoting_after_switch(situation: Situation, base: Plan) -> Plan:
    """Right after the decision to promote: the stable starts moving in the same step."""
    size = full_size(situation.md, situation.stable)
    return dataclasses.replace(base, stable=Apply(size), canary=Keep(), requeue_after=0.0)


def _next_due(situation: Situation, canary: CanaryStatus, step: Step) -> float:
    """Seconds until something is due: the next analysis, the end of the pause, the deadline."""
    md, now = situation.md, situation.now
    candidates = [SAFETY_REQUEUE]
    if md.spec.rollout.resolved_metrics():
        interval = seconds(md.spec.rollout.analysis.interval)
        last = canary.last_analysis
        due = interval - _elapsed(now, last.time) if last and last.time else 0.0
        candidates.append(due)
    if canary.step_started_at:
        candidates.append(seconds(step.pause) - _elapsed(now, canary.step_started_at))
    deadline = seconds(md.spec.progress_deadline) + seconds(step.pause)
    candidates.append(deadline - _elapsed(now, canary.last_progress_at))
    return max(0.0, min(candidates))


def _refuse_action(situation: Situation, plan_: Plan) -> Plan:
    """An action that does not apply now is removed anyway, with a Warning Event saying why."""
    action = situation.action
    if action is None or plan_.action_taken == action:
        return plan_
    if action not in ACTIONS:
        note = f"unknown action {action!r}: use one of {', '.join(ACTIONS)}"
    else:
        note = f"{action} does not apply now ({_when(situation)})"
    event = Event("ActionIgnored", note, warning=True)
    return dataclasses.replace(plan_, events=(*plan_.events, event), action_taken=action)


def _when(situation: Situation) -> str:
    status = situation.md.status
    if status.canary.state:
        return f"the canary is {status.canary.state.lower()}"
    if status.rolled_back is not None and status.rolled_back.revision == situation.revision:
        return "the revision was rolled back: retry applies"
    return "no canary is running"


def _elapsed(now: datetime.datetime, since: str) -> float:
    return (now - parse_time(since)).total_seconds() if since else 0.0


def _failures(analysis: AnalysisStatus) -> str:
    failed = [c for c in analysis.checks if c.result == "fail"] or list(analysis.checks)
    return "; ".join(_check_text(c.metric, c.value, c.bound, c.message) for c in failed)


def _inconclusive(analysis: AnalysisStatus) -> str:
    held = [c for c in analysis.checks if c.result == "inconclusive"]
    return "checks inconclusive, holding: " + "; ".join(f"{c.metric}: {c.message}" for c in held)


def _check_text(metric: str, value: float | None, bound: str, message: str) -> str:
    if value is None:
        return f"{metric}: {message}"
    return f"{metric} {value:.4g} (bound {bound})"


def _stalled(situation: Situation, canary: CanaryStatus, want: int) -> str:
    if situation.canary.ready < want:
        return f"{situation.canary.ready}/{want} canary pods ready"
    last = canary.last_analysis
    if last is None:
        return "no analysis could run"
    if last.result == "inconclusive":
        return _inconclusive(last)
    return f"the last analysis was {last.result}"

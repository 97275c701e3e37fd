"""No canary runs: the stable alone (steady, or a direct rolling update), a rolled-back revision
that stays so, or a canary that starts."""

from __future__ import annotations

import dataclasses

from modelyard_operator.api.timefmt import rfc3339
from modelyard_operator.api.v1alpha1 import CanaryStatus, RolledBack
from modelyard_operator.reconcile.rollout.model import Apply, Event, Keep, Plan, Scale, Situation
from modelyard_operator.reconcile.rollout.sizing import full_size, steps_of
from modelyard_operator.reconcile.rollout.targets import base_plan, with_targets


def steady(situation: Situation) -> Plan:
    """The spec asks for the stable revision (or nothing is stable yet): one Deployment."""
    md, stable = situation.md, situation.stable
    stable_rev, stable_version = md.status.stable.revision, md.status.stable.version
    if stable.complete and stable.revision == situation.revision:
        stable_rev, stable_version = situation.revision, md.spec.model.version
    rolled = md.status.rolled_back
    keep_marker = rolled if rolled is not None and rolled.revision == situation.revision else None
    return base_plan(
        situation,
        stable=Apply(full_size(md, stable)),
        stable_revision=stable_rev,
        stable_version=stable_version,
        rolled_back=keep_marker,
    )


def direct(situation: Situation) -> Plan:
    """A rolling update of the stable Deployment (strategy Immediate, or nothing serving)."""
    plan_ = steady(situation)
    return dataclasses.replace(plan_, rolled_back=None)


def stay_rolled_back(situation: Situation, rolled: RolledBack) -> Plan:
    """The spec still asks for a revision that was rolled back: serve the stable, full size."""
    if situation.action == "retry":
        return start(situation, retried=True)
    md = situation.md
    size = full_size(md, situation.stable)
    return base_plan(situation, stable=Keep() if size is None else Scale(size), rolled_back=rolled)


def start(situation: Situation, *, retried: bool) -> Plan:
    md, now = situation.md, situation.now
    steps = steps_of(md)
    paused = md.spec.rollout.paused
    version = md.spec.model.version
    if paused:
        # Held before the first step: nothing of the new revision runs yet.
        size = full_size(md, situation.stable)
        return base_plan(
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
    started = base_plan(
        situation,
        rolled_back=None,
        canary_status=status,
        started=True,
        events=(event,),
        action_taken="retry" if retried else None,
    )
    return with_targets(situation, started)

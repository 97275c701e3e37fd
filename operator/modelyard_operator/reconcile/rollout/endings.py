"""How a canary ends: promoted (the stable rolls to it, then it goes) or rolled back (the stable
restored to full size first, then it goes); the ending is recorded once it is done."""

from __future__ import annotations

from typing import Literal

from modelyard_operator.api.timefmt import rfc3339
from modelyard_operator.api.v1alpha1 import CanaryStatus, RolledBack, seconds
from modelyard_operator.reconcile.rollout.model import (
    SAFETY_REQUEUE,
    Apply,
    Ending,
    Event,
    Keep,
    Plan,
    Remove,
    Scale,
    Situation,
    Target,
)
from modelyard_operator.reconcile.rollout.sizing import (
    elapsed,
    full_size,
    rollback_size,
    stable_size,
)
from modelyard_operator.reconcile.rollout.targets import base_plan, with_targets


def promote(
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
    base = base_plan(
        situation,
        canary_status=promoting,
        rolled_back=None,
        events=(*events, event),
        action_taken=action_taken,
    )
    return with_targets(situation, base)


def end(
    situation: Situation,
    result: Literal["RolledBack", "Aborted", "Superseded"],
    reason: str,
    *,
    canary: CanaryStatus | None = None,
    action_taken: str | None = None,
) -> Plan:
    """Start rolling back: the stable first, then the canary goes (``rolling_back``)."""
    current = canary or situation.md.status.canary
    rolling = current.model_copy(
        update={
            "state": "RollingBack",
            "ending": result,
            "reason": reason,
            "last_progress_at": rfc3339(situation.now),
            "rollback_replicas": rollback_size(situation.md, situation.stable, situation.canary),
        }
    )
    verb = {"RolledBack": "rolling back", "Aborted": "aborting", "Superseded": "removing"}[result]
    event = Event(
        "RollingBack",
        f"{verb} the canary {current.version}: {reason}",
        warning=result != "Superseded",
    )
    base = base_plan(situation, canary_status=rolling, events=(event,), action_taken=action_taken)
    return with_targets(situation, base)


def promoting(situation: Situation) -> Plan:
    """The stable Deployment rolls to the canary's revision; then the canary goes."""
    md, canary = situation.md, situation.md.status.canary
    stable = situation.stable
    size = full_size(md, stable)
    if situation.revision == canary.revision:
        target: Target = Apply(size)
    elif stable.revision == canary.revision:
        target = Keep() if size is None else Scale(size)  # the update is under way: let it finish
    else:
        return end(situation, "Superseded", "the spec moved on before the promotion began")
    wanted = stable.replicas if size is None else size
    done = stable.revision == canary.revision and stable.complete and stable.ready >= wanted
    if not done:
        return base_plan(
            situation,
            stable=target,
            canary=Keep(),
            canary_status=canary,
            rolled_back=None,
            requeue_after=SAFETY_REQUEUE,
        )
    ending = Ending(canary.revision, canary.version, "Promoted", canary.reason)
    event = Event("Promoted", f"{canary.version} ({canary.revision}) is stable: {canary.reason}")
    return base_plan(
        situation,
        stable=target,
        canary=Remove(),
        stable_revision=canary.revision,
        stable_version=canary.version,
        rolled_back=None,
        ending=ending,
        events=(event,),
    )


def rolling_back(situation: Situation) -> Plan:
    """The stable back to its full size first; once it is ready (or the deadline passed) the
    canary goes and the rollback is recorded."""
    md, canary, stable = situation.md, situation.md.status.canary, situation.stable
    size = stable_size(md, stable, canary)
    stable_target: Target = Keep() if size is None else Scale(size)
    wanted = stable.replicas if size is None else size
    restored = stable.ready >= wanted
    overdue = elapsed(situation.now, canary.last_progress_at) > seconds(md.spec.progress_deadline)
    if not restored and not overdue:
        return base_plan(
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
    return base_plan(
        situation,
        stable=stable_target,
        canary=Remove(),
        rolled_back=marker,
        ending=ending,
        events=tuple(events),
    )

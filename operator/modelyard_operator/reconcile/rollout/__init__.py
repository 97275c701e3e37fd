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

from modelyard_operator.api.timefmt import parse_time
from modelyard_operator.api.v1alpha1 import seconds
from modelyard_operator.reconcile.rollout.endings import promoting, rolling_back
from modelyard_operator.reconcile.rollout.idle import direct, start, stay_rolled_back, steady
from modelyard_operator.reconcile.rollout.messages import refuse_action
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
    achieved_weight,
    canary_mode,
    canary_replicas,
    full_size,
    steps_of,
)
from modelyard_operator.reconcile.rollout.stepping import stepping

__all__ = [
    "SAFETY_REQUEUE",
    "Apply",
    "Ending",
    "Event",
    "Keep",
    "Plan",
    "Remove",
    "Scale",
    "Situation",
    "Target",
    "achieved_weight",
    "analysis_due",
    "canary_mode",
    "canary_replicas",
    "full_size",
    "plan",
    "steps_of",
]


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
    return refuse_action(situation, decide(situation))


def decide(situation: Situation) -> Plan:
    md, status = situation.md, situation.md.status
    state = status.canary.state
    if state == "Stepping":
        return stepping(situation)
    if state == "Promoting":
        return promoting(situation)
    if state == "RollingBack":
        return rolling_back(situation)
    stable_rev = status.stable.revision
    if situation.revision == stable_rev or not stable_rev:
        return steady(situation)
    if not canary_mode(md) or situation.stable.ready < 1:
        return direct(situation)
    rolled = status.rolled_back
    if rolled is not None and rolled.revision == situation.revision:
        return stay_rolled_back(situation, rolled)
    return start(situation, retried=False)

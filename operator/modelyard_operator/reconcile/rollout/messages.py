"""What a rollout says: why an action does not apply, which checks failed, why it stalled."""

from __future__ import annotations

import dataclasses

from modelyard_operator.api.actions import ACTIONS
from modelyard_operator.api.v1alpha1 import AnalysisStatus, CanaryStatus
from modelyard_operator.reconcile.rollout.model import Event, Plan, Situation


def refuse_action(situation: Situation, plan_: Plan) -> Plan:
    """An action that does not apply now is removed anyway, with a Warning Event saying why."""
    action = situation.action
    if action is None or plan_.action_taken == action:
        return plan_
    if action not in ACTIONS:
        note = f"unknown action {action!r}: use one of {', '.join(ACTIONS)}"
    else:
        note = f"{action} does not apply now ({when(situation)})"
    event = Event("ActionIgnored", note, warning=True)
    return dataclasses.replace(plan_, events=(*plan_.events, event), action_taken=action)


def when(situation: Situation) -> str:
    status = situation.md.status
    if status.canary.state:
        return f"the canary is {status.canary.state.lower()}"
    if status.rolled_back is not None and status.rolled_back.revision == situation.revision:
        return "the revision was rolled back: retry applies"
    return "no canary is running"


def failures(analysis: AnalysisStatus) -> str:
    failed = [c for c in analysis.checks if c.result == "fail"] or list(analysis.checks)
    return "; ".join(check_text(c.metric, c.value, c.bound, c.message) for c in failed)


def inconclusive(analysis: AnalysisStatus) -> str:
    held = [c for c in analysis.checks if c.result == "inconclusive"]
    return "checks inconclusive, holding: " + "; ".join(f"{c.metric}: {c.message}" for c in held)


def check_text(metric: str, value: float | None, bound: str, message: str) -> str:
    if value is None:
        return f"{metric}: {message}"
    return f"{metric} {value:.4g} (bound {bound})"


def stalled(situation: Situation, canary: CanaryStatus, want: int) -> str:
    if situation.canary.ready < want:
        return f"{situation.canary.ready}/{want} canary pods ready"
    last = canary.last_analysis
    if last is None:
        return "no analysis could run"
    if last.result == "inconclusive":
        return inconclusive(last)
    return f"the last analysis was {last.result}"

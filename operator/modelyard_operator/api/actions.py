"""The imperative actions (``serving.modelyard.io/action: <verb>``) and when each applies.

Pure, on a status alone. The operator's rollout state machine acts on exactly these (a test ties
the two), the CLI refuses what would not apply, and Argo CD's action discovery mirrors them.
"""

from __future__ import annotations

from typing import Final, Literal

from modelyard_operator.api.v1alpha1 import ModelDeploymentStatus

Action = Literal["promote", "abort", "pause", "resume", "retry"]
ACTIONS: Final[tuple[Action, ...]] = ("promote", "abort", "pause", "resume", "retry")
HELP: Final[dict[Action, str]] = {
    "promote": "skip the remaining steps and checks: promote the canary now",
    "abort": "roll the canary back now (the stable first, then the canary goes)",
    "pause": "hold the canary at its current step (checks keep running)",
    "resume": "let a canary held by the pause action go on",
    "retry": "start the canary of a rolled-back revision again",
}


def why_not(action: str, status: ModelDeploymentStatus) -> str | None:
    """None when ``action`` applies to an object with this status, else why it does not."""
    canary = status.canary
    if action not in ACTIONS:
        return f"unknown action {action!r}: use one of {', '.join(ACTIONS)}"
    if action in ("promote", "abort", "pause"):
        if canary.state != "Stepping":
            what = f"the canary is {canary.state.lower()}" if canary.state else "no canary runs"
            return f"{action} applies while a canary steps; {what}"
        if action == "pause" and canary.paused:
            return "the canary is already paused"
        return None
    if action == "resume":
        return (
            None
            if canary.state == "Stepping" and canary.paused
            else (
                "resume applies to a canary held by the pause action "
                "(spec.rollout.paused is changed in the spec)"
            )
        )
    return None if status.rolled_back is not None else "retry applies after a rollback"

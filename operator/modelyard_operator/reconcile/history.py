"""The bounded history of revisions in status, newest first. Pure.

An entry starts ``Progressing`` when a revision starts rolling out (a direct rollout, or a canary
started or retried). A direct rollout's entry follows the phase (``Ready``, ``Failed``); a
canary's ends ``Promoted``, ``RolledBack``, ``Aborted`` or ``Superseded`` and keeps that. An
entry still ``Progressing`` when a newer one starts is ``Superseded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from modelyard_operator.api.v1alpha1 import HISTORY_LIMIT, HistoryEntry, ModelDeployment

if TYPE_CHECKING:
    from modelyard_operator.reconcile.rollout import Plan

FOLLOWS_PHASE: Final = frozenset({"Progressing", "Ready", "Failed"})


def update(
    entries: list[HistoryEntry],
    *,
    md: ModelDeployment,
    rev: str,
    image: str,
    plan: Plan,
    result: str | None,
    reason: str,
    now: str,
) -> list[HistoryEntry]:
    """``entries`` after this step: a new entry, an ending, or a direct rollout's result."""
    history = list(entries)
    if plan.ending is not None:
        history = _end(history, plan.ending.revision, plan.ending.result, plan.ending.reason, now)
    head = history[0] if history else None
    # A direct rollout of a revision the stable does not run yet (not when the spec merely
    # returns to the stable revision, nor while a canary is held before its first step).
    rolls_out = not plan.canary_status.state and not plan.paused and rev != plan.stable_revision
    if (
        plan.started
        or (head is None and not plan.paused)
        or (rolls_out and head is not None and head.revision != rev)
    ):
        if head is not None and head.result == "Progressing":
            history[0] = head.model_copy(update={"result": "Superseded", "finished_at": now})
        history.insert(0, HistoryEntry(
            version=md.spec.model.version, revision=rev, sha256=md.spec.model.sha256 or "",
            image=image, result="Progressing", started_at=now,
        ))  # fmt: skip
    if not history:
        return history
    head = history[0]
    direct = not plan.canary_status.state and head.result in FOLLOWS_PHASE
    if direct and head.revision == rev and result is not None and result != head.result:
        history[0] = head.model_copy(
            update={"result": result, "reason": reason if result == "Failed" else "",
                    "finished_at": now}
        )  # fmt: skip
    return history[:HISTORY_LIMIT]


def _end(
    history: list[HistoryEntry], revision: str, result: str, reason: str, now: str
) -> list[HistoryEntry]:
    for index, entry in enumerate(history):
        if entry.revision == revision:
            history[index] = entry.model_copy(
                update={"result": result, "reason": reason, "finished_at": now}
            )
            break
    return history

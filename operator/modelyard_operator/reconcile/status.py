"""Status from what was observed: the Deployment, its pods, and what the handler found missing.

Pure: ``compute_status`` takes the ModelDeployment, the observed objects and ``now`` and returns
the new status plus the condition transitions worth an Event. A pod that cannot start is read
from its containers' termination messages (``stage: reason``, design §3), so the status names the
stage (download, verify, load, provider, warmup) instead of a generic CrashLoopBackOff.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from modelyard_operator.api.v1alpha1 import (
    HISTORY_LIMIT,
    Condition,
    ConditionStatus,
    HistoryEntry,
    ModelDeployment,
    ModelDeploymentStatus,
    Phase,
    TrackStatus,
)
from modelyard_operator.reconcile import naming
from modelyard_runtime.contract.names import MODEL_STAGES, STAGE_REASONS

Object = Mapping[str, Any]

WAITING_REASONS: Final = frozenset(
    {
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
    }
)
_STAGE_LINE = re.compile(r"^\s*([a-z]+):\s*(.+)$", re.DOTALL)


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """Why a pod of the current revision cannot serve."""

    stage: str
    reason: str
    message: str
    pod: str


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """Something the handler found before any pod ran (e.g. a Secret that does not exist)."""

    reason: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """A condition that changed: worth a Kubernetes Event."""

    type: str
    status: str
    reason: str
    message: str
    warning: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Observed:
    deployment: Object | None
    pods: Sequence[Object]
    problem: Problem | None = None


def pod_failure(pod: Object) -> Failure | None:
    """The first fatal container state of a pod, read the way the runtime reports it."""
    status = pod.get("status") or {}
    name = str((pod.get("metadata") or {}).get("name", ""))
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for container in statuses:
        state, last = container.get("state") or {}, container.get("lastState") or {}
        waiting = state.get("waiting") or {}
        for terminated in (state.get("terminated"), last.get("terminated")):
            if terminated and terminated.get("exitCode", 0) != 0:
                return _terminated_failure(container.get("name", ""), terminated, name)
        if waiting.get("reason") in WAITING_REASONS:
            return Failure(
                stage="container",
                reason=str(waiting["reason"]),
                message=f"{container.get('name', '')}: {waiting.get('message', waiting['reason'])}",
                pod=name,
            )
    return None


def _terminated_failure(container: str, terminated: Object, pod: str) -> Failure:
    text = str(terminated.get("message") or "").strip()
    match = _STAGE_LINE.match(text.splitlines()[-1] if text else "")
    if match and match.group(1) in STAGE_REASONS:
        stage = match.group(1)
        return Failure(stage, STAGE_REASONS[stage], f"{stage}: {match.group(2).strip()}", pod)
    code = terminated.get("exitCode")
    detail = f": {text[-300:]}" if text else ""
    return Failure("container", "ContainerFailed", f"{container} exited with {code}{detail}", pod)


def _pod_ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _revision(pod: Object) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(naming.REVISION_LABEL, ""))


def _init_succeeded(pod: Object) -> bool:
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
    for container in statuses:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if container.get("name") == "fetch" and terminated.get("exitCode") == 0:
            return True
    return False


def _rollout(deployment: Object | None) -> tuple[int, int, int, bool, bool]:
    """(desired, ready, existing, complete, deadline exceeded) of the Deployment."""
    if deployment is None:
        return 0, 0, 0, False, False
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    current = int(status.get("observedGeneration", 0)) >= int(
        (deployment.get("metadata") or {}).get("generation", 0)
    )
    complete = (
        current
        and int(status.get("updatedReplicas", 0)) >= desired
        and int(status.get("availableReplicas", 0)) >= desired
        and ready >= desired
        and int(status.get("replicas", 0)) == desired
    )
    exceeded = any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in status.get("conditions") or []
    )
    return desired, ready, int(status.get("replicas", 0)), complete, exceeded


def compute_status(
    md: ModelDeployment, observed: Observed, *, rev: str, image: str, now: str
) -> tuple[ModelDeploymentStatus, list[Transition]]:
    """The new status and the transitions since ``md.status``."""
    pods = [p for p in observed.pods if _revision(p) == rev]
    failures = [f for f in (pod_failure(p) for p in pods) if f is not None]
    failure = min(failures, key=lambda f: f.pod) if failures else None
    desired, ready, existing, complete, exceeded = _rollout(observed.deployment)
    problem = observed.problem or (Problem(failure.reason, failure.message) if failure else None)
    if problem is None and exceeded and not complete:
        problem = Problem("ProgressDeadlineExceeded", "the rollout made no progress in time")

    conditions: dict[str, Verdict] = {
        "Ready": _ready(observed, complete, desired, ready, problem),
        "Progressing": _progressing(observed, complete, problem),
        "ModelVerified": _verified(md, pods, failure),
        "Degraded": _degraded(md, rev, complete, desired, ready, problem),
    }
    phase = _phase(observed, complete, ready, problem)
    previous = {c.type: c for c in md.status.conditions}
    merged, transitions = [], []
    for type_, (verdict, reason, message) in conditions.items():
        old = previous.get(type_)
        changed = old is None or (old.status, old.reason) != (verdict, reason)
        merged.append(
            Condition(
                type=type_,
                status=verdict,
                reason=reason,
                message=message,
                last_transition_time=now if changed or old is None else old.last_transition_time,
                observed_generation=md.metadata.generation,
            )
        )
        bad = (
            (type_ == "Degraded" and verdict == "True")
            or (verdict == "False" and problem is not None and reason == problem.reason)
            or (type_ == "ModelVerified" and verdict == "False")
        )
        # A condition's first value is news only when it is bad: a new object starts quietly.
        if changed and (old is not None or bad):
            transitions.append(Transition(type_, verdict, reason, message, warning=bad))
    stable = md.status.stable
    if complete and problem is None:
        stable = TrackStatus(version=md.spec.model.version, revision=rev, ready_replicas=ready)
    elif stable.revision:
        stable_ready = sum(
            1 for p in observed.pods if _revision(p) == stable.revision and _pod_ready(p)
        )
        stable = stable.model_copy(update={"ready_replicas": stable_ready})
    status = ModelDeploymentStatus(
        observed_generation=md.metadata.generation,
        phase=phase,
        conditions=merged,
        replicas=existing,
        ready_replicas=ready,
        selector=naming.selector_string(naming.selector_labels(md)),
        url=naming.service_url(md),
        stable=stable,
        canary=md.status.canary,
        history=_history(md, rev=rev, image=image, phase=phase, problem=problem, now=now),
    )
    return status, transitions


Verdict = tuple[ConditionStatus, str, str]


def _ready(
    observed: Observed, complete: bool, desired: int, ready: int, problem: Problem | None
) -> Verdict:
    if problem:
        return "False", problem.reason, problem.message
    if complete:
        return "True", "Available", f"{ready}/{desired} replicas ready"
    if observed.deployment is None:
        return "False", "Pending", "the runtime Deployment does not exist yet"
    return "False", "RollingOut", f"{ready}/{desired} replicas ready"


def _progressing(observed: Observed, complete: bool, problem: Problem | None) -> Verdict:
    if problem:
        return "False", problem.reason, problem.message
    if complete:
        return "False", "RolloutComplete", "every replica runs the current revision"
    if observed.deployment is None:
        return "True", "Creating", "creating the runtime Deployment"
    return "True", "RollingOut", "runtime pods are starting"


def _verified(md: ModelDeployment, pods: Sequence[Object], failure: Failure | None) -> Verdict:
    if failure and failure.stage in MODEL_STAGES:
        return "False", failure.reason, failure.message
    if any(_init_succeeded(p) or _pod_ready(p) for p in pods):
        if md.spec.model.sha256:
            return "True", "DigestMatched", f"sha256 {md.spec.model.sha256} verified on download"
        return "True", "NoDigest", "downloaded; spec.model.sha256 is not set, so not verified"
    return "Unknown", "Pending", "no runtime pod has downloaded the model yet"


def _degraded(
    md: ModelDeployment,
    rev: str,
    complete: bool,
    desired: int,
    ready: int,
    problem: Problem | None,
) -> Verdict:
    if problem:
        return "True", problem.reason, problem.message
    if not complete and md.status.stable.revision == rev and ready < desired:
        return "True", "ReplicasUnavailable", f"{ready}/{desired} replicas ready"
    return "False", "AsExpected", "nothing is failing"


def _phase(observed: Observed, complete: bool, ready: int, problem: Problem | None) -> Phase:
    if problem:
        return "Degraded" if ready else "Failed"
    if complete:
        return "Ready"
    return "Pending" if observed.deployment is None else "Progressing"


def _history(
    md: ModelDeployment, *, rev: str, image: str, phase: Phase, problem: Problem | None, now: str
) -> list[HistoryEntry]:
    history = list(md.status.history)
    if not history or history[0].revision != rev:
        if history and history[0].result in {"", "Progressing", "Ready"}:
            history[0] = history[0].model_copy(update={"result": "Superseded", "finished_at": now})
        entry = HistoryEntry(
            version=md.spec.model.version,
            revision=rev,
            sha256=md.spec.model.sha256 or "",
            image=image,
            result="Progressing",
            started_at=now,
        )
        history.insert(0, entry)
    head = history[0]
    result = {"Ready": "Ready", "Failed": "Failed"}.get(phase, head.result)
    if result != head.result:
        reason = problem.reason if problem and result == "Failed" else ""
        history[0] = head.model_copy(
            update={"result": result, "reason": reason, "finished_at": now}
        )
    return history[:HISTORY_LIMIT]


def status_payload(status: ModelDeploymentStatus) -> dict[str, Any]:
    """The status as it goes on the wire (camelCase, nothing omitted)."""
    return status.model_dump(mode="json", by_alias=True)

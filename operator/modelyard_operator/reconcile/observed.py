"""What the operator observed of a ModelDeployment's children, read from raw API objects.

Pure. ``Track`` summarises one runtime Deployment (the stable or the canary one); ``pod_failure``
reads why a pod cannot serve from its containers' termination messages (``stage: reason``,
design §3), so the status names the stage (download, verify, load, ...) instead of a generic
CrashLoopBackOff.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from modelyard_runtime.contract.names import REVISION_LABEL, STAGE_REASONS, TRACK_LABEL

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
    """Why a pod cannot serve."""

    stage: str
    reason: str
    message: str
    pod: str


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """Something found before any pod ran (e.g. a Secret that does not exist)."""

    reason: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Track:
    """One runtime Deployment as observed; all zeros when it does not exist."""

    exists: bool = False
    revision: str = ""  # the pod template's revision label
    replicas: int = 0  # spec.replicas: what it is asked to run
    existing: int = 0  # status.replicas: pods that exist
    ready: int = 0
    complete: bool = False  # every replica runs the template and is available
    deadline_exceeded: bool = False

    @classmethod
    def of(cls, deployment: Object | None) -> Track:
        if deployment is None:
            return cls()
        spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
        desired = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas", 0))
        existing = int(status.get("replicas", 0))
        current = int(status.get("observedGeneration", 0)) >= int(
            (deployment.get("metadata") or {}).get("generation", 0)
        )
        complete = (
            current
            and int(status.get("updatedReplicas", 0)) >= desired
            and int(status.get("availableReplicas", 0)) >= desired
            and ready >= desired
            and existing == desired
        )
        exceeded = any(
            c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
            for c in status.get("conditions") or []
        )
        return cls(True, str(spec.get("revision") or ""), desired, existing, ready, complete,
                   exceeded)  # fmt: skip


def labels(obj: Object) -> Mapping[str, str]:
    return ((obj.get("metadata") or {}).get("labels")) or {}


def revision_of(pod: Object) -> str:
    return str(labels(pod).get(REVISION_LABEL, ""))


def track_of(obj: Object) -> str:
    return str(labels(obj).get(TRACK_LABEL, "stable"))


def pod_ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def init_succeeded(pod: Object) -> bool:
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
    for container in statuses:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if container.get("name") == "fetch" and terminated.get("exitCode") == 0:
            return True
    return False


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


def first_failure(pods: Sequence[Object], revision: str) -> Failure | None:
    """The failure of the first (by name) failing pod of ``revision``."""
    failures = [f for f in (pod_failure(p) for p in pods if revision_of(p) == revision) if f]
    return min(failures, key=lambda f: f.pod) if failures else None

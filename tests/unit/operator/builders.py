"""Objects for the operator's fast tests: ModelDeployments, Deployments and pods as the indexes
hold them, and one call that runs the pure pipeline (rollout plan, then status) on them."""

from __future__ import annotations

import datetime
from typing import Any

from hack.testbed.manifests import md_manifest
from modelyard_operator.api.timefmt import rfc3339
from modelyard_operator.api.v1alpha1 import AnalysisStatus, ModelDeployment, ModelDeploymentStatus
from modelyard_operator.reconcile import rollout
from modelyard_operator.reconcile.observed import Problem, Track
from modelyard_operator.reconcile.status import Observed, Transition, compute_status
from modelyard_runtime.contract.names import REVISION_LABEL, TRACK_LABEL

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NOW, LATER = rfc3339(T0), rfc3339(T0 + datetime.timedelta(minutes=5))
REV = "abc123"


def model(*, status: ModelDeploymentStatus | None = None, **kwargs: Any) -> ModelDeployment:
    manifest = md_manifest("m", **kwargs)
    manifest["metadata"].update(namespace="ns", uid="u1", generation=3)
    md = ModelDeployment.model_validate(manifest)
    return md if status is None else md.model_copy(update={"status": status})


def deployment(
    desired: int = 2, ready: int | None = None, *, rev: str = REV, name: str = "m", **status: Any
) -> dict[str, Any]:
    ready = desired if ready is None else ready
    return {
        "metadata": {"name": name, "generation": 1},
        "spec": {"replicas": desired, "revision": rev},
        "status": {
            "observedGeneration": 1,
            "replicas": desired,
            "updatedReplicas": desired,
            "availableReplicas": ready,
            "readyReplicas": ready,
            **status,
        },
    }


def pod(
    name: str = "p1", *, ready: bool = True, rev: str = REV, track: str = "stable", **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {REVISION_LABEL: rev, TRACK_LABEL: track}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "initContainerStatuses": [{"name": "fetch", "state": {"terminated": {"exitCode": 0}}}],
            **status,
        },
    }


def crashed(container: str, message: str, code: int = 1) -> dict[str, Any]:
    return {
        "name": container,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": code, "message": message}},
    }


def step(
    md: ModelDeployment,
    stable: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    *,
    rev: str = REV,
    now: str = NOW,
    canary: dict[str, Any] | None = None,
    problem: Problem | None = None,
    analysis: AnalysisStatus | None = None,
    action: str | None = None,
) -> tuple[ModelDeploymentStatus, list[Transition], rollout.Plan]:
    """The plan and the status the controller would compute from these observations."""
    situation = rollout.Situation(
        md=md, revision=rev, stable=Track.of(stable), canary=Track.of(canary),
        analysis=analysis, action=action,
        now=datetime.datetime.fromisoformat(now.replace("Z", "+00:00")),
    )  # fmt: skip
    plan = rollout.plan(situation)
    observed = Observed(Track.of(stable), Track.of(canary), pods, problem)
    status, transitions = compute_status(md, observed, plan, rev=rev, image="img", now=now)
    return status, transitions, plan

"""Objects for the operator's fast tests: ModelDeployments, Deployments and pods as the indexes
hold them, and one call that runs the pure pipeline (rollout plan, then status) on them."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from hack.testbed.manifests import md_manifest
from modelyard_operator.api.timefmt import rfc3339
from modelyard_operator.api.v1alpha1 import (
    AnalysisStatus,
    CheckResult,
    ModelDeployment,
    ModelDeploymentStatus,
)
from modelyard_operator.reconcile import rollout
from modelyard_operator.reconcile.observed import Problem, Track
from modelyard_operator.reconcile.rollout import Apply, Keep, Remove, Situation
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


S, D, E = "rev-s", "rev-d", "rev-e"


def canary_spec(**rollout_spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "steps": [{"weight": 25, "pause": "10s"}, {"weight": 50, "pause": "10s"}],
        "analysis": {"interval": "5s", "failureThreshold": 2, "minSampleCount": 1},
    }
    base.update(rollout_spec)
    return {"rollout": base}


def verdict(result: str, *, at: datetime.datetime, value: float = 0.5) -> AnalysisStatus:
    check = CheckResult(metric="latency", result=result, value=value, bound="<= 0.25 s",  # type: ignore[arg-type]
                        message=f"canary p99 {value * 1000:.0f} ms")  # fmt: skip
    return AnalysisStatus(time=rfc3339(at), result=result, checks=[check])  # type: ignore[arg-type]


@dataclasses.dataclass
class World:
    """A ModelDeployment, its two Deployments and a clock; ``tick`` runs one sync."""

    md: ModelDeployment
    now: datetime.datetime = T0
    stable: Track = dataclasses.field(default_factory=lambda: Track(True, S, 4, 4, 4, True))
    canary: Track = dataclasses.field(default_factory=Track)
    ready: bool = True  # new pods become ready at once
    plans: list[rollout.Plan] = dataclasses.field(default_factory=list)

    def tick(
        self,
        *,
        revision: str = D,
        analysis: str | None = None,
        action: str | None = None,
        failure: str | None = None,
        seconds: float = 0,
    ) -> rollout.Plan:
        self.now += datetime.timedelta(seconds=seconds)
        result = verdict(analysis, at=self.now) if analysis else None
        situation = Situation(md=self.md, revision=revision, stable=self.stable,
                              canary=self.canary, canary_failure=failure, analysis=result,
                              action=action, now=self.now)  # fmt: skip
        plan = rollout.plan(situation)
        observed = Observed(self.stable, self.canary, [])
        status, _ = compute_status(self.md, observed, plan, rev=revision, image="img",
                                   now=rfc3339(self.now))  # fmt: skip
        self.md = self.md.model_copy(update={"status": status})
        self.stable = self._follow(self.stable, plan.stable, revision)
        self.canary = self._follow(self.canary, plan.canary, revision)
        self.plans.append(plan)
        return plan

    def phase(self) -> str:
        return self.md.status.phase

    def _follow(self, track: Track, target: rollout.Target, revision: str) -> Track:
        if isinstance(target, Remove):
            return Track()
        if isinstance(target, Keep):
            return track
        replicas = target.replicas if target.replicas is not None else track.replicas
        rev = revision if isinstance(target, Apply) else track.revision
        same = rev == track.revision
        ready = replicas if self.ready else min(replicas, track.ready if same else 0)
        return Track(True, rev, replicas, replicas, ready, ready == replicas)


def steady(**extra: Any) -> World:
    """v1 (rev S) serving on 4 replicas; the spec now asks for rev D."""
    md = model(replicas=4, extra_spec=canary_spec(**extra))
    status = md.status.model_copy(
        update={"stable": md.status.stable.model_copy(update={"revision": S, "version": "v0"})}
    )
    return World(md.model_copy(update={"status": status}))

"""Status from what was observed and what the rollout decided. Pure.

``compute_status`` takes the ModelDeployment, the observed tracks and pods, the rollout's
``Plan`` and ``now``; it returns the new status and the condition transitions worth an Event.
Conditions: Ready (the model is served), Progressing (a rollout moves; its reason names the
step), ModelVerified (the desired revision's file passed its digest), CanaryHealthy (the last
analysis), Degraded (something fails, or a rollback happened).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard_operator.api.v1alpha1 import (
    AutoscalingStatus,
    CanaryStatus,
    Condition,
    ConditionStatus,
    ModelDeployment,
    ModelDeploymentStatus,
    Phase,
    TrackStatus,
)
from modelyard_operator.reconcile import history, naming
from modelyard_operator.reconcile.autoscaling import read_hpa
from modelyard_operator.reconcile.observed import (
    Failure,
    Object,
    Problem,
    Track,
    first_failure,
    init_succeeded,
    pod_ready,
    revision_of,
    track_of,
)
from modelyard_operator.reconcile.rollout import Apply, Plan, achieved_weight
from modelyard_runtime.contract.names import MODEL_STAGES

Verdict = tuple[ConditionStatus, str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Observed:
    stable: Track
    canary: Track
    pods: Sequence[Object]
    problem: Problem | None = None  # found by the handler (a missing Secret, a rejected child)
    hpa: Mapping[str, Any] | None = None  # the autoscaler's HPA (ours, or the one KEDA made)


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """A condition that changed: worth a Kubernetes Event."""

    type: str
    status: str
    reason: str
    message: str
    warning: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Facts:
    """What the conditions and the phase are decided from."""

    md: ModelDeployment
    observed: Observed
    plan: Plan
    rev: str
    problem: Problem | None
    direct: bool  # no canary: the stable Deployment itself rolls to the spec's revision
    complete: bool  # direct, and every replica runs the spec's revision

    @property
    def rolled_back(self) -> bool:
        marker = self.plan.rolled_back
        return marker is not None and marker.revision == self.rev and self.direct

    @property
    def held(self) -> bool:
        """Paused before a canary's first step."""
        return self.direct and self.plan.paused and self.rev != self.plan.stable_revision


def _problem(md: ModelDeployment, observed: Observed, plan: Plan, rev: str) -> Problem | None:
    """What keeps the served revision from serving (a canary's failures are the rollout's)."""
    if observed.problem is not None:
        return observed.problem
    # The revision the stable Deployment runs or moves to.
    serving = rev if isinstance(plan.stable, Apply) else plan.stable_revision
    failure = first_failure([p for p in observed.pods if track_of(p) == "stable"], serving)
    if failure is not None:
        return Problem(failure.reason, failure.message)
    stable = observed.stable
    if stable.deadline_exceeded and not stable.complete and not plan.canary_status.state:
        return Problem("ProgressDeadlineExceeded", "the rollout made no progress in time")
    return None


def compute_status(
    md: ModelDeployment, observed: Observed, plan: Plan, *, rev: str, image: str, now: str
) -> tuple[ModelDeploymentStatus, list[Transition]]:
    """The new status and the transitions since ``md.status``."""
    direct = not plan.canary_status.state
    stable = observed.stable
    complete = direct and stable.complete and stable.revision == rev
    facts = _Facts(md, observed, plan, rev, _problem(md, observed, plan, rev), direct, complete)
    failure = first_failure(observed.pods, rev)
    conditions: dict[str, Verdict] = {
        "Ready": _ready(facts),
        "Progressing": _progressing(facts),
        "ModelVerified": _verified(md, observed.pods, rev, failure),
        "CanaryHealthy": _canary_healthy(plan.canary_status),
        "Degraded": _degraded(facts),
    }
    merged, transitions = _merge(md, conditions, facts.problem, now)
    phase = _phase(facts)
    status = ModelDeploymentStatus(
        observed_generation=md.metadata.generation,
        phase=phase,
        conditions=merged,
        replicas=stable.existing + observed.canary.existing,
        ready_replicas=stable.ready + observed.canary.ready,
        selector=naming.selector_string(naming.selector_labels(md)),
        url=naming.service_url(md),
        stable=_stable_track(plan, observed),
        canary=_canary_track(plan.canary_status, observed),
        autoscaling=_autoscaling(md, observed.hpa),
        rolled_back=plan.rolled_back,
        history=history.update(
            md.status.history,
            md=md,
            rev=rev,
            image=image,
            plan=plan,
            result={"Ready": "Ready", "Failed": "Failed"}.get(phase) if direct else None,
            reason=facts.problem.reason if facts.problem else "",
            now=now,
        ),
    )
    return status, transitions


def _merge(
    md: ModelDeployment, conditions: dict[str, Verdict], problem: Problem | None, now: str
) -> tuple[list[Condition], list[Transition]]:
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
            or (type_ in ("ModelVerified", "CanaryHealthy") and verdict == "False")
        )
        # A condition's first value is news only when it is bad: a new object starts quietly.
        if changed and (old is not None or bad):
            transitions.append(Transition(type_, verdict, reason, message, warning=bad))
    return merged, transitions


def _stable_track(plan: Plan, observed: Observed) -> TrackStatus:
    ready = sum(
        1
        for p in observed.pods
        if revision_of(p) == plan.stable_revision and track_of(p) == "stable" and pod_ready(p)
    )
    return TrackStatus(
        version=plan.stable_version, revision=plan.stable_revision, ready_replicas=ready
    )


def _canary_track(canary: CanaryStatus, observed: Observed) -> CanaryStatus:
    if not canary.revision:
        return canary
    ready = observed.canary.ready
    weight = achieved_weight(observed.stable.ready, ready) if observed.canary.exists else 0
    return canary.model_copy(update={"ready_replicas": ready, "weight": weight})


def _ready(f: _Facts) -> Verdict:
    stable = f.observed.stable
    if f.problem:
        return "False", f.problem.reason, f.problem.message
    if f.direct and not f.rolled_back and not f.held:
        if f.complete:
            return "True", "Available", f"{stable.ready}/{stable.replicas} replicas ready"
        if not stable.exists:
            return "False", "Pending", "the runtime Deployment does not exist yet"
        return "False", "RollingOut", f"{stable.ready}/{stable.replicas} replicas ready"
    if stable.ready < 1:
        return "False", "NoStableReplicas", "no stable replica is ready"
    return "True", "Available", f"{stable.ready} stable replica(s) serve {f.plan.stable_version}"


def _progressing(f: _Facts) -> Verdict:
    canary, plan = f.plan.canary_status, f.plan
    if f.problem:
        return "False", f.problem.reason, f.problem.message
    if canary.state == "Stepping":
        where = (
            f"step {canary.step}/{canary.steps}: {canary.version} at {canary.desired_weight}% "
            f"({_weight(f)}% achieved)"
        )
        if plan.paused:
            return "Unknown", "RolloutPaused", f"paused at {where}"
        return "True", "CanaryStep", where
    if canary.state == "Promoting":
        return "True", "Promoting", f"promoting {canary.version}: {canary.reason}"
    if canary.state == "RollingBack":
        return "True", "RollingBack", f"restoring {plan.stable_version}: {canary.reason}"
    if f.held:
        return "Unknown", "RolloutPaused", "paused before the first canary step"
    if f.rolled_back and plan.rolled_back is not None:
        marker = plan.rolled_back
        return "False", marker.result, f"{marker.version} was rolled back: {marker.reason}"
    if f.complete:
        return "False", "RolloutComplete", "every replica runs the current revision"
    if not f.observed.stable.exists:
        return "True", "Creating", "creating the runtime Deployment"
    return "True", "RollingOut", "runtime pods are starting"


def _weight(f: _Facts) -> int:
    return _canary_track(f.plan.canary_status, f.observed).weight


def _verified(
    md: ModelDeployment, pods: Sequence[Object], rev: str, failure: Failure | None
) -> Verdict:
    if failure and failure.stage in MODEL_STAGES:
        return "False", failure.reason, failure.message
    mine = [p for p in pods if revision_of(p) == rev]
    if any(init_succeeded(p) or pod_ready(p) for p in mine):
        signature = md.spec.model.signature
        if signature:
            ref = signature.public_key_ref
            digest = f", sha256 {md.spec.model.sha256}" if md.spec.model.sha256 else ""
            where = f"{ref.kind} {ref.name!r}{digest}"
            return (
                "True",
                "SignatureVerified",
                f"signed by the key in {where}, verified on download",
            )
        if md.spec.model.sha256:
            return "True", "DigestMatched", f"sha256 {md.spec.model.sha256} verified on download"
        return "True", "NoDigest", "downloaded; spec.model.sha256 is not set, so not verified"
    return "Unknown", "Pending", "no runtime pod has downloaded the model yet"


def _canary_healthy(canary: CanaryStatus) -> Verdict:
    if not canary.revision:
        return "Unknown", "NoCanary", "no canary is running"
    last = canary.last_analysis
    if last is None:
        return "Unknown", "NotAnalysed", "no analysis has run yet"
    if last.result == "pass":
        return "True", "ChecksPassed", f"every check passed at {last.time}"
    detail = "; ".join(f"{c.metric}: {c.message}" for c in last.checks if c.result != "pass")
    if last.result == "fail":
        return "False", "ChecksFailed", detail
    return "Unknown", "Inconclusive", detail


def _degraded(f: _Facts) -> Verdict:
    stable = f.observed.stable
    if f.problem:
        return "True", f.problem.reason, f.problem.message
    if f.rolled_back and f.plan.rolled_back is not None:
        marker = f.plan.rolled_back
        return "True", marker.result, f"{marker.version} was rolled back: {marker.reason}"
    settled = f.direct and stable.revision == f.plan.stable_revision == f.rev
    if settled and not f.complete and stable.ready < stable.replicas:
        return "True", "ReplicasUnavailable", f"{stable.ready}/{stable.replicas} replicas ready"
    return "False", "AsExpected", "nothing is failing"


def _phase(f: _Facts) -> Phase:
    canary = f.plan.canary_status
    if f.problem:
        return "Degraded" if f.observed.stable.ready + f.observed.canary.ready else "Failed"
    if canary.state == "RollingBack":
        return "RollingBack"
    if canary.state or f.held:
        return "Paused" if f.plan.paused else "Progressing"
    if f.rolled_back:
        return "Degraded"
    if f.complete:
        return "Ready"
    return "Pending" if not f.observed.stable.exists else "Progressing"


def status_payload(status: ModelDeploymentStatus) -> dict[str, object]:
    """The status as it goes on the wire (camelCase, nothing omitted)."""
    return status.model_dump(mode="json", by_alias=True)


def _autoscaling(md: ModelDeployment, hpa: Mapping[str, Any] | None) -> AutoscalingStatus | None:
    if md.spec.autoscaling is None:
        return None
    reading = read_hpa(hpa)
    if reading is None:
        return AutoscalingStatus(reason="Pending", message="the autoscaler has not reported yet")
    return AutoscalingStatus(
        desired_replicas=reading.desired,
        current_replicas=reading.current,
        reason=reading.reason,
        message=reading.message,
        last_scale_time=reading.last_scale_time,
    )

"""``status`` of a ModelDeployment: phase, conditions, tracks, the canary, history.

Written only by the operator (``reconcile.status`` computes it, ``reconcile.rollout`` the canary's
part); never read back as desired state, but it is where a rollout's state lives, so an operator
restarted at any moment resumes where it was.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from modelyard_operator.api.v1alpha1.common import Wire

Phase = Literal["Pending", "Progressing", "Paused", "Ready", "Degraded", "RollingBack", "Failed"]
ConditionType = Literal["Ready", "Progressing", "ModelVerified", "CanaryHealthy", "Degraded"]
ConditionStatus = Literal["True", "False", "Unknown"]
CheckVerdict = Literal["pass", "fail", "inconclusive"]
CanaryState = Literal["", "Stepping", "Promoting", "RollingBack"]
Ending = Literal["", "Promoted", "RolledBack", "Aborted", "Superseded"]


class Condition(Wire):
    type: str
    """Condition type: Ready, Progressing, ModelVerified, CanaryHealthy or Degraded."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """One CamelCase word for machines."""
    message: str = ""
    """What happened, for people."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    observed_generation: int = 0
    """The .metadata.generation this condition was computed from."""


class TrackStatus(Wire):
    version: str = ""
    """Model version on this track."""
    revision: str = ""
    """Revision hash (model + runtime spec)."""
    ready_replicas: int = 0
    """Ready pods on this track."""


class CheckResult(Wire):
    metric: str
    """The analysis metric's name."""
    result: CheckVerdict
    """pass, fail or inconclusive."""
    value: float | None = None
    """What was measured (absent when nothing could be)."""
    bound: str = ""
    """The bound it was held to, e.g. "<= 0.01" or "<= 1.5 x stable (0.012)"."""
    message: str = ""
    """Why, for people."""


class AnalysisStatus(Wire):
    time: str = ""
    """When the checks ran (RFC 3339)."""
    result: CheckVerdict = "inconclusive"
    """fail if any check failed, else inconclusive if any was, else pass."""
    checks: list[CheckResult] = Field(default_factory=list, max_length=16)
    """Each check's result."""


class CanaryStatus(Wire):
    version: str = ""
    """Model version on the canary."""
    revision: str = ""
    """The canary's revision hash; empty when no canary runs."""
    state: CanaryState = ""
    """Stepping (through the steps), Promoting (the stable moves to it) or RollingBack (the
    stable is restored, then the canary removed)."""
    ready_replicas: int = 0
    """Ready canary pods."""
    replicas: int = 0
    """Canary pods wanted now."""
    weight: int = 0
    """Share of the ready pods that are the canary's (percent): the traffic it takes."""
    desired_weight: int = 0
    """The current step's weight."""
    step: int = 0
    """Current step, from 1."""
    steps: int = 0
    """How many steps there are."""
    started_at: str = ""
    """When the canary started (RFC 3339)."""
    step_started_at: str = ""
    """When the current step's weight was reached; empty while the canary scales to it."""
    last_progress_at: str = ""
    """When the rollout last moved (a step entered, promotion or rollback started)."""
    paused: bool = False
    """Paused by the pause action (spec.rollout.paused is the user's own switch)."""
    failed_checks: int = 0
    """Failed checks so far; failureThreshold of them roll the canary back."""
    last_analysis: AnalysisStatus | None = None
    """The latest analysis."""
    ending: Ending = ""
    """While Promoting or RollingBack: how the rollout ends (Promoted, RolledBack, Aborted,
    Superseded)."""
    reason: str = ""
    """Why it ends that way (names the metric, its value and its bound on a rollback)."""
    rollback_replicas: int = 0
    """With an autoscaler, while RollingBack: the stable's size before the canary goes (its
    size plus the canary's ready pods when the rollback began, at most maxReplicas), so it can
    take the canary's traffic back; the autoscaler resumes from there."""


class RolledBack(Wire):
    version: str
    """The version that was rolled back."""
    revision: str
    """Its revision: it stays rolled back until the spec asks for another one, or `retry`."""
    result: Literal["RolledBack", "Aborted"]
    """RolledBack (by the analysis, a failing pod or the progress deadline) or Aborted (by the
    abort action)."""
    reason: str = ""
    """Why."""
    at: str = ""
    """When the rollback finished (RFC 3339)."""


class HistoryEntry(Wire):
    version: str
    """Model version."""
    revision: str
    """Revision hash."""
    sha256: str = ""
    """Declared digest."""
    image: str = ""
    """Runtime image."""
    result: str = ""
    """Progressing, Ready (rolled out directly), Promoted (a canary that passed), RolledBack,
    Aborted, Failed or Superseded."""
    reason: str = ""
    """Why, for RolledBack, Aborted and Failed."""
    started_at: str = ""
    """When the revision was first applied (RFC 3339)."""
    finished_at: str = ""
    """When it became Ready, was promoted, failed, rolled back or replaced (RFC 3339)."""


class AutoscalingStatus(Wire):
    desired_replicas: int = 0
    """Replicas the autoscaler wants now."""
    current_replicas: int = 0
    """Replicas the autoscaler last saw."""
    reason: str = ""
    """Why, from the autoscaler's conditions: SucceededRescale, ReadyForNewScale,
    TooManyReplicas, DesiredWithinRange, FailedGetPodsMetric (it holds), ..."""
    message: str = ""
    """The autoscaler's own words."""
    last_scale_time: str = ""
    """When it last changed the size (RFC 3339)."""


HISTORY_LIMIT: Final = 10


class ModelDeploymentStatus(Wire):
    observed_generation: int = 0
    """The .metadata.generation the status describes."""
    phase: Phase = "Pending"
    """Pending, Progressing, Paused, Ready, Degraded, RollingBack or Failed."""
    conditions: list[Condition] = Field(default_factory=list, max_length=8)
    """Ready, Progressing, ModelVerified, CanaryHealthy, Degraded."""
    replicas: int = 0
    """Runtime pods that exist."""
    ready_replicas: int = 0
    """Runtime pods that are Ready."""
    selector: str = ""
    """Label selector of the runtime pods (for the scale subresource)."""
    url: str = ""
    """In-cluster URL of the Service."""
    stable: TrackStatus = Field(default_factory=TrackStatus)
    """The version being served."""
    canary: CanaryStatus = Field(default_factory=CanaryStatus)
    """The version under test during a canary rollout (empty otherwise)."""
    autoscaling: AutoscalingStatus | None = None
    """What the autoscaler decided last and why (with spec.autoscaling)."""
    rolled_back: RolledBack | None = None
    """Set while the spec asks for a revision that was rolled back."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    """Recent revisions, newest first."""

"""The rollout's vocabulary: what a track's Deployment should become (``Apply``, ``Scale``,
``Keep``, ``Remove``), the ``Situation`` a step is decided from and the ``Plan`` it yields."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Final, Literal

from modelyard_operator.api.v1alpha1 import (
    AnalysisStatus,
    CanaryStatus,
    ModelDeployment,
    RolledBack,
)
from modelyard_operator.reconcile.observed import Track

SAFETY_REQUEUE: Final = 30.0  # seconds: look again at an active rollout at least this often


@dataclasses.dataclass(frozen=True, slots=True)
class Apply:
    """Render the track's Deployment from the spec (the desired revision); ``replicas`` None
    leaves the count to the autoscaler."""

    replicas: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    """Leave the Deployment's template as it is (it holds another revision than the spec's);
    set only its replicas."""

    replicas: int


@dataclasses.dataclass(frozen=True, slots=True)
class Keep:
    """Change nothing."""


@dataclasses.dataclass(frozen=True, slots=True)
class Remove:
    """Delete the Deployment (if it exists)."""


Target = Apply | Scale | Keep | Remove


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Ending:
    """How a rollout of ``revision`` ended, for the history and the metrics."""

    revision: str
    version: str
    result: Literal["Promoted", "RolledBack", "Aborted", "Superseded"]
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Situation:
    md: ModelDeployment
    revision: str  # what the spec asks for now
    stable: Track
    canary: Track
    canary_failure: str | None = None  # "Reason: message" of a canary pod that cannot start
    analysis: AnalysisStatus | None = None  # checks run for this step, if they were due
    action: str | None = None  # the action annotation's value, if any
    now: datetime.datetime = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    stable: Target
    canary: Target
    canary_status: CanaryStatus
    stable_revision: str  # status.stable after this step
    stable_version: str
    rolled_back: RolledBack | None
    paused: bool = False  # held (spec.rollout.paused or the pause action)
    started: bool = False  # a rollout of the spec's revision began: a new history entry
    ending: Ending | None = None
    events: tuple[Event, ...] = ()
    action_taken: str | None = None  # the annotation to remove (acted on or refused)
    requeue_after: float | None = None

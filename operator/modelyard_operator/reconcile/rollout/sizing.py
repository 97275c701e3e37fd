"""How big each track is at a step, and time arithmetic on status times."""

from __future__ import annotations

import datetime
import math

from modelyard_operator.api.timefmt import parse_time
from modelyard_operator.api.v1alpha1 import CanaryStatus, ModelDeployment, Step
from modelyard_operator.reconcile.observed import Track


def steps_of(md: ModelDeployment) -> list[Step]:
    return md.spec.rollout.resolved_steps()


def canary_mode(md: ModelDeployment) -> bool:
    """Whether new revisions go through a canary at all."""
    return md.spec.rollout.strategy == "Canary"


def full_size(md: ModelDeployment, stable: Track) -> int | None:
    """The stable's full size: spec.replicas, or None with an autoscaler (it decides)."""
    return None if md.spec.autoscaling else md.spec.replicas


def rollback_size(md: ModelDeployment, stable: Track, canary: Track) -> int:
    """With an autoscaler, the stable's size for a rollback: room for the canary's traffic
    (its ready pods) on top of the stable's current size, within maxReplicas; 0 without one."""
    scaling = md.spec.autoscaling
    if scaling is None:
        return 0
    return max(stable.replicas, min(scaling.max_replicas, stable.replicas + canary.ready))


def stable_size(md: ModelDeployment, stable: Track, canary: CanaryStatus) -> int | None:
    """The stable's size to reach: ``full_size``, or while an autoscaled canary rolls back the
    size recorded when it began (None: the autoscaler decides)."""
    size = full_size(md, stable)
    if size is None and canary.state == "RollingBack" and canary.rollback_replicas:
        return max(canary.rollback_replicas, stable.replicas)
    return size


def canary_replicas(md: ModelDeployment, stable: Track, weight: int) -> int:
    """Canary pods for ``weight`` percent: rounded up, at least one; with an autoscaler, the
    stable's current size times the weight."""
    base = stable.replicas if md.spec.autoscaling else md.spec.replicas
    base = max(base, 1)
    return max(1, min(base, math.ceil(base * weight / 100)))


def achieved_weight(stable_ready: int, canary_ready: int) -> int:
    total = stable_ready + canary_ready
    return round(100 * canary_ready / total) if total else 0


def elapsed(now: datetime.datetime, since: str) -> float:
    return (now - parse_time(since)).total_seconds() if since else 0.0

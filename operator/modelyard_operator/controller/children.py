"""Writing a ModelDeployment's children: the Service, PDB and HPA on a spec change, and each
track's Deployment as the rollout plan says (apply from the spec, scale only, keep or remove).

An object is written only when it would change: each applied Deployment carries a digest of
itself (``reconcile.children.with_digest``), compared with what the index and ``Memory`` hold,
so an unchanged spec, a restart or a busy sync loop writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.controller.memory import Key, Memory
from modelyard_operator.k8s.api import KubeClient
from modelyard_operator.k8s.errors import K8sNotFoundError
from modelyard_operator.reconcile import naming
from modelyard_operator.reconcile.children import (
    applied_digest,
    stale_kinds,
    static_children,
    with_digest,
)
from modelyard_operator.reconcile.deployment import build_deployment
from modelyard_operator.reconcile.rollout import Apply, Keep, Plan, Remove, Scale, Target

DEPLOYMENT = ("apps/v1", "Deployment")


async def apply_static(client: KubeClient, md: ModelDeployment, *, prometheus_url: str) -> None:
    """Service, PDB and the autoscaler as the spec says; an autoscaler the spec dropped is
    deleted. ``prometheus_url`` is what a KEDA ScaledObject's trigger queries."""
    for child in static_children(md, prometheus_url=prometheus_url):
        await client.apply(child)
    for api_version, kind in stale_kinds(md):
        try:
            await client.delete(api_version, kind, md.metadata.namespace, md.metadata.name)
        except K8sNotFoundError:
            continue


async def apply_tracks(
    client: KubeClient,
    memory: Memory,
    key: Key,
    md: ModelDeployment,
    *,
    image: str,
    rev: str,
    plan: Plan,
    live: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None],
) -> None:
    """The stable Deployment, then the canary's, as ``plan`` says."""
    for track, target, body in (("stable", plan.stable, live[0]), ("canary", plan.canary, live[1])):
        await _apply_track(client, memory, key, md, track, target, body, image=image, rev=rev)


async def _apply_track(
    client: KubeClient,
    memory: Memory,
    key: Key,
    md: ModelDeployment,
    track: str,
    target: Target,
    live: Mapping[str, Any] | None,
    *,
    image: str,
    rev: str,
) -> None:
    name = naming.deployment_name(md, track)
    namespace = md.metadata.namespace
    live_replicas = (live or {}).get("spec", {}).get("replicas")
    if isinstance(target, Apply):
        desired = with_digest(
            build_deployment(md, image, rev=rev, track=track, replicas=target.replicas)
        )
        digest = applied_digest(desired)
        same = digest in (applied_digest(live or {}), memory.applied.get((key, name)))
        if same and (target.replicas is None or live_replicas == target.replicas):
            return
        await client.apply(desired)
        memory.applied[(key, name)] = digest
    elif isinstance(target, Scale):
        if live is None or live_replicas == target.replicas:
            return
        patch = {"spec": {"replicas": target.replicas}}
        await client.patch(*DEPLOYMENT, namespace, name, patch)
    elif isinstance(target, Remove):
        if live is None and (key, name) not in memory.applied:
            return
        memory.applied.pop((key, name), None)
        try:
            await client.delete(*DEPLOYMENT, namespace, name)
        except K8sNotFoundError:
            return
    else:
        assert isinstance(target, Keep)

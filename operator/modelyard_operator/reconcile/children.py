"""The child objects of a ModelDeployment besides its Deployments: Service, PDB, the autoscaler
(an HPA or a KEDA ScaledObject: ``reconcile.autoscaling``), NetworkPolicy (``reconcile.network``).

Pure and deterministic. ``static_children`` is what the handler applies with server-side apply
when the spec changes (the Deployments follow the rollout: ``reconcile.rollout``);
``stale_kinds`` names the optional children (the autoscaler, the NetworkPolicy) that must be deleted
when the spec drops them. ``with_digest`` stamps an object with a digest of itself, so an
unchanged object is never written again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.reconcile import naming
from modelyard_operator.reconcile.autoscaling import autoscaler, stale_autoscalers
from modelyard_operator.reconcile.network import NETWORK_POLICY, build_network_policy
from modelyard_runtime.contract.names import GROUP

APPLIED_DIGEST_ANNOTATION: Final = f"{GROUP}/applied-digest"

Object = dict[str, Any]


def _metadata(md: ModelDeployment, name: str | None = None) -> Object:
    return {
        "name": name or md.metadata.name,
        "namespace": md.metadata.namespace,
        "labels": naming.common_labels(md),
        "ownerReferences": [naming.owner_reference(md)],
    }


def build_service(md: ModelDeployment) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(md),
        "spec": {
            "type": "ClusterIP",
            "selector": {naming.DEPLOYMENT_LABEL: md.metadata.name},
            "ports": [
                {"name": "http", "port": naming.HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
                {
                    "name": "grpc",
                    "port": naming.GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c",
                },
            ],
        },
    }


def build_pdb(md: ModelDeployment) -> Object:
    min_available = md.spec.disruption.min_available
    if min_available is None:
        min_available = max(md.spec.min_replicas - 1, 0)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(md),
        "spec": {
            "minAvailable": min_available,
            "selector": {"matchLabels": {naming.DEPLOYMENT_LABEL: md.metadata.name}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def static_children(md: ModelDeployment, *, prometheus_url: str = "") -> list[Object]:
    """Service, PDB, the autoscaler (``prometheus_url``: what a KEDA trigger queries) and the
    NetworkPolicy, as the spec asks."""
    children = [build_service(md), build_pdb(md)]
    scaler = autoscaler(md, prometheus_url)
    if scaler is not None:
        children.append(scaler)
    policy = build_network_policy(md)
    if policy is not None:
        children.append(policy)
    return children


def with_digest(obj: Object) -> Object:
    """``obj`` with annotation ``APPLIED_DIGEST_ANNOTATION``: a digest of everything else in it."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    meta = obj["metadata"]
    annotations = {**meta.get("annotations", {}), APPLIED_DIGEST_ANNOTATION: digest}
    return {**obj, "metadata": {**meta, "annotations": annotations}}


def applied_digest(obj: Mapping[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(
        APPLIED_DIGEST_ANNOTATION, ""))  # fmt: skip


def stale_kinds(md: ModelDeployment) -> list[tuple[str, str]]:
    """(apiVersion, kind) of optional children the spec no longer wants."""
    stale = stale_autoscalers(md)
    if build_network_policy(md) is None:
        stale.append(NETWORK_POLICY)
    return stale


def runtime_image(md: ModelDeployment, default_image: str) -> str:
    return md.spec.runtime.image or default_image

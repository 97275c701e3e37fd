"""What the operator keeps of watched objects (kopf's indexes), and how it reads them back.

The ``trim_*`` functions decide what an index keeps of each object: the fields the status and
the rollout read, not the pod template (a thousand full Deployments would cost hundreds of MiB).
``View`` reads the four indexes (ModelDeployments, runtime Deployments, pods, HPAs): any
mapping from (namespace, owner name) to the trimmed objects, so tests pass plain dicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any, Final

from modelyard_operator.reconcile import naming
from modelyard_operator.reconcile.children import APPLIED_DIGEST_ANNOTATION
from modelyard_runtime.contract.names import ACTION_ANNOTATION, DEPLOYMENT_LABEL, REVISION_LABEL

Key = tuple[str, str]
Object = dict[str, Any]
Index = Mapping[Key, Collection[Object]]
POD_STATUS_KEYS: Final = ("conditions", "containerStatuses", "initContainerStatuses", "phase")
KEPT_ANNOTATIONS: Final = frozenset({ACTION_ANNOTATION, APPLIED_DIGEST_ANNOTATION})


def trim(
    body: Mapping[str, Any],
    *,
    spec_keys: tuple[str, ...] | None = None,
    status_keys: tuple[str, ...] | None = None,
) -> Object:
    """The metadata, (parts of) spec and status of ``body``; only the annotations read here."""
    meta = body.get("metadata", {})
    spec, status = dict(body.get("spec") or {}), dict(body.get("status") or {})
    if spec_keys is not None:
        spec = {k: spec[k] for k in spec_keys if k in spec}
    if status_keys is not None:
        status = {k: status[k] for k in status_keys if k in status}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "generation", "labels") if k in meta}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k in KEPT_ANNOTATIONS
    }
    if annotations:
        kept["annotations"] = annotations
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": spec,
        "status": status,
    }


def owner(body: Mapping[str, Any]) -> str | None:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return labels.get(DEPLOYMENT_LABEL)


def trim_deployment(body: Mapping[str, Any]) -> Object:
    """A runtime Deployment: replicas, its template's revision label, status, our digest."""
    trimmed = trim(body, spec_keys=("replicas",))
    template = (body.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    trimmed["spec"]["revision"] = labels.get(REVISION_LABEL)
    return trimmed


HPA_STATUS_KEYS: Final = ("conditions", "currentReplicas", "desiredReplicas", "lastScaleTime")


def trim_hpa(body: Mapping[str, Any]) -> Object:
    """An autoscaler's HPA (ours, or the one KEDA made): its sizes and conditions."""
    return trim(body, spec_keys=("minReplicas", "maxReplicas"), status_keys=HPA_STATUS_KEYS)


def trim_pod(body: Mapping[str, Any]) -> Object:
    return trim(body, spec_keys=(), status_keys=POD_STATUS_KEYS)


@dataclasses.dataclass(frozen=True)
class View:
    mdeps: Index
    deployments: Index
    pods: Index
    hpas: Index = dataclasses.field(default_factory=dict)

    def md(self, key: Key) -> Object | None:
        bodies = list(self.mdeps.get(key, ()))
        return bodies[0] if bodies else None

    def deployment(self, key: Key, name: str) -> Object | None:
        for body in self.deployments.get(key, ()):
            if body["metadata"]["name"] == name:
                return body
        return None

    def tracks(self, key: Key, md_name: str) -> tuple[Object | None, Object | None]:
        """(stable Deployment, canary Deployment) as indexed."""
        return (
            self.deployment(key, naming.track_deployment_name(md_name, "stable")),
            self.deployment(key, naming.track_deployment_name(md_name, "canary")),
        )

    def hpa(self, key: Key) -> Object | None:
        """The HPA that scales ``key``'s stable track (KEDA's is named keda-hpa-<name>)."""
        bodies = sorted(self.hpas.get(key, ()), key=lambda b: str(b["metadata"]["name"]))
        return bodies[0] if bodies else None

    def pods_of(self, key: Key) -> list[Object]:
        return list(self.pods.get(key, ()))

    def keys(self) -> list[Key]:
        return list(self.mdeps.keys())

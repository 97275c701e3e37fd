"""Names, labels and the revision hash of a ModelDeployment's children (design §3).

Pure. The selector labels never change for the life of a ModelDeployment, because a Deployment's
selector is immutable; everything that varies (version, revision) is a pod label only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_runtime.contract.names import (
    ACTION_ANNOTATION,
    DEPLOYMENT_LABEL,
    GRPC_PORT,
    HTTP_PORT,
    REVISION_LABEL,
    TRACK_LABEL,
    VERSION_LABEL,
)

__all__ = [
    "ACTION_ANNOTATION",
    "DEPLOYMENT_LABEL",
    "GRPC_PORT",
    "HTTP_PORT",
    "REVISION_LABEL",
    "TRACK_LABEL",
    "VERSION_LABEL",
]

MANAGED_BY: Final = "modelyard-operator"
FIELD_MANAGER: Final = "modelyard-operator"


# Model fields added after v1alpha1 shipped: left out of the revision while unset, so an operator
# upgrade does not give every existing ModelDeployment a new revision (and a canary).
_LATE_MODEL_FIELDS: Final = ("signature", "encryption")


def revision(md: ModelDeployment, image: str) -> str:
    """Short hash of everything that changes what a pod serves: the model, runtime and image."""
    spec = md.spec
    model = spec.model.model_dump(mode="json", by_alias=True)
    for late in _LATE_MODEL_FIELDS:  # unset: the hash of a spec from before they existed
        if model.get(late) is None:
            model.pop(late, None)
    material = {
        "model": model,
        "runtime": spec.runtime.model_dump(mode="json", by_alias=True),
        "resources": spec.resources.model_dump(mode="json", by_alias=True),
        "image": image,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def deployment_name(md: ModelDeployment, track: str) -> str:
    return track_deployment_name(md.metadata.name, track)


def track_deployment_name(name: str, track: str) -> str:
    """The stable track's Deployment has the ModelDeployment's name; the canary's adds -canary."""
    return name if track == "stable" else f"{name}-{track}"


def selector_labels(md: ModelDeployment, track: str = "stable") -> dict[str, str]:
    return {
        "app.kubernetes.io/instance": md.metadata.name,
        "app.kubernetes.io/name": "modelyard-runtime",
        DEPLOYMENT_LABEL: md.metadata.name,
        TRACK_LABEL: track,
    }


def common_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels on every child object."""
    return {
        "app.kubernetes.io/instance": md.metadata.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": "modelyard-runtime",
        "app.kubernetes.io/part-of": "modelyard",
        DEPLOYMENT_LABEL: md.metadata.name,
    }


def pod_labels(md: ModelDeployment, *, track: str, rev: str) -> dict[str, str]:
    return {
        **common_labels(md),
        TRACK_LABEL: track,
        REVISION_LABEL: rev,
        VERSION_LABEL: md.spec.model.version,
    }


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def service_url(md: ModelDeployment) -> str:
    name, namespace = md.metadata.name, md.metadata.namespace
    return f"http://{name}.{namespace}.svc:{HTTP_PORT}/v2/models/{model_name(md)}"


def model_name(md: ModelDeployment) -> str:
    """The model's name in the protocol: the ModelDeployment's name."""
    return md.metadata.name


def owner_reference(md: ModelDeployment) -> dict[str, object]:
    return {
        "apiVersion": md.api_version,
        "kind": md.kind,
        "name": md.metadata.name,
        "uid": md.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }

"""ModelDeployment manifests as a user writes them (camelCase, defaults left out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def md_manifest(
    name: str,
    *,
    uri: str = "",
    version: str = "v1",
    replicas: int | None = None,
    sha256: str | None = None,
    secret: str | None = None,
    autoscaling: bool = False,
    extra_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ModelDeployment manifest as a user writes it (camelCase, defaults left out)."""
    model: dict[str, Any] = {"uri": uri or f"s3://models/{name}.onnx", "version": version}
    if sha256:
        model["sha256"] = sha256
    if secret:
        model["storageSecretRef"] = {"name": secret}
    spec: dict[str, Any] = {"model": model}
    if replicas is not None:
        spec["replicas"] = replicas
    if autoscaling:
        spec["autoscaling"] = {"minReplicas": 1, "maxReplicas": 4, "target": 8}
    spec.update(extra_spec or {})
    return {
        "apiVersion": "serving.modelyard.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }

"""Kubernetes Events about a ModelDeployment, reported as the operator (not as kopf).

``event`` builds a core/v1 Event (pure); ``Controller`` posts them and never fails a sync
because an Event could not be written.
"""

from __future__ import annotations

from typing import Any, Final

from modelyard_operator.api.v1alpha1 import ModelDeployment

COMPONENT: Final = "modelyard-operator"


def event(
    md: ModelDeployment, *, reason: str, message: str, warning: bool, now: str, instance: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{md.metadata.name}.", "namespace": md.metadata.namespace},
        "involvedObject": {
            "apiVersion": md.api_version,
            "kind": md.kind,
            "name": md.metadata.name,
            "namespace": md.metadata.namespace,
            "uid": md.metadata.uid,
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }

"""kopf settings: storage in our annotations, our finalizer, a lean diff base, paged lists,
Events reported as the operator.

kopf builds a "diff base" (a deep copy of the object minus status) for every event of every
watched resource. Only ModelDeployments have create/update handlers that read diffs; runtime
pods and Deployments are watched for their status alone, so for them the copy is skipped (it
was the largest single cost at a thousand ModelDeployments).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

import kopf

from modelyard_operator.api.v1alpha1 import GROUP, KIND
from modelyard_operator.controller.events import COMPONENT

LIST_CHUNK = 100  # objects per page of kopf's initial listing


class ModelDeploymentDiffBase(kopf.AnnotationsDiffBaseStorage):
    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        if body.get("kind") != KIND:
            return cast(kopf.BodyEssence, {})
        return super().build(body=body, extra_fields=extra_fields)


def configure(settings: kopf.OperatorSettings) -> None:
    """Progress and diff base in annotations with our prefix; our finalizer; quiet events."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = ModelDeploymentDiffBase(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING
    # Events kopf posts (a rejected spec) name the operator, as the controller's own do.
    settings.posting.reporting_component = COMPONENT
    settings.posting.event_name_prefix = f"{COMPONENT}-"
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    # No settings.queueing.worker_limit: with indexes, every object's worker must run to finish
    # the initial indexing, so a limit below the object count deadlocks the resume.
    # The initial listing in pages: with lean lists (``k8s.client.LeanListResponse``) a restart
    # with a thousand ModelDeployments holds far less at once than one big page.
    settings.watching.chunk_size = LIST_CHUNK

"""kopf settings: storage in our annotations, our finalizer, a lean diff base, paged lists,
Events reported as the operator.

kopf builds a "diff base" (a deep copy of the object minus status) for every event of every
watched resource. Only ModelDeployments have create/update handlers that read diffs; runtime
pods and Deployments are watched for their status alone, so for them the copy is skipped (it
was the largest single cost at a thousand ModelDeployments).

kopf retries a failed API request (connection refused, a 5xx, a timeout) eight times over
54 s and then lets the error escape, which stops the whole operator: a watch's listing or a
patch of its own annotations during an etcd or apiserver outage longer than that exits the
process. ``EndlessBackoffs`` makes it retry like client-go's informers do instead: kopf's own
delays, then every ``API_BACKOFF_CAP`` seconds for as long as the outage lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Final, cast

import kopf

from modelyard_operator.api.v1alpha1 import GROUP, KIND
from modelyard_operator.controller.events import COMPONENT

LIST_CHUNK = 100  # objects per page of kopf's initial listing
API_BACKOFFS: Final = (1.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)  # kopf's defaults, seconds
API_BACKOFF_CAP: Final = 30.0  # then every 30 s, as client-go's reflector backs off


class EndlessBackoffs:
    """The delays before each retry of a failed API request, never running out. Iterable
    afresh for every request and without a length, so kopf never counts down to giving up."""

    def __iter__(self) -> Iterator[float]:
        yield from API_BACKOFFS
        while True:
            yield API_BACKOFF_CAP


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
    settings.networking.error_backoffs = EndlessBackoffs()
    # No settings.queueing.worker_limit: with indexes, every object's worker must run to finish
    # the initial indexing, so a limit below the object count deadlocks the resume.
    # The initial listing in pages: with lean lists (``k8s.client.LeanListResponse``) a restart
    # with a thousand ModelDeployments holds far less at once than one big page.
    settings.watching.chunk_size = LIST_CHUNK

"""What the handlers share: settings, metrics, the loaded model and the server's lifecycle flags.

Created by ``server.run`` (and by tests) with ``ServerState.for_settings``; ``attach`` starts
serving a loaded model. Handlers reach it through the ``STATE`` app key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import time

from aiohttp import web

from modelyard_runtime.batching.scheduler import Batcher, BatchingConfig
from modelyard_runtime.datatypes import TensorSpec
from modelyard_runtime.errors import (
    NotFoundError,
    RuntimeServiceError,
    UnauthorizedError,
    UnavailableError,
)
from modelyard_runtime.metrics import REJECT_REASONS, RuntimeMetrics
from modelyard_runtime.server.processes import ProcessGroup
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import LoadedModel


def batching_config(settings: Settings) -> BatchingConfig:
    return BatchingConfig(
        max_batch_size=settings.max_batch_size,
        max_queue_delay_s=settings.max_queue_delay_ms / 1000,
        max_queue_size=settings.max_queue_size,
        workers=settings.inference_workers,
    )


class RequestRecord:
    """One inference request in flight: a context manager the transports fill in with its code.

    Entering counts it in flight; leaving records ``modelyard_requests_total`` and the latency
    histogram. A plain class, not ``contextlib.contextmanager``: it runs on every request.
    """

    __slots__ = ("_protocol", "_started", "_state", "code")

    def __init__(self, state: ServerState, protocol: str) -> None:
        self._state = state
        self._protocol = protocol
        self.code = 500
        self._started = 0.0

    def __enter__(self) -> RequestRecord:
        self._started = time.perf_counter()
        state = self._state
        state.in_flight += 1
        state.idle.clear()
        return self

    def __exit__(self, *exc_info: object) -> None:
        state = self._state
        state.in_flight -= 1
        if not state.in_flight:
            state.idle.set()
        elapsed = time.perf_counter() - self._started
        state.metrics.request_done(self._protocol, self.code, elapsed)


@dataclasses.dataclass(slots=True, eq=False)
class ServerState:
    settings: Settings
    metrics: RuntimeMetrics
    token: bytes | None = None
    model: LoadedModel | None = None
    batcher: Batcher | None = None
    input_specs: dict[str, TensorSpec] = dataclasses.field(default_factory=dict)
    not_ready_reason: str = "the model is loading"
    draining: bool = False
    in_flight: int = 0
    idle: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    group: ProcessGroup | None = None  # the sibling processes, when there are several
    group_ready: bool = False  # every sibling has been seen ready (then it stays so)

    @classmethod
    def for_settings(
        cls, settings: Settings, *, token: bytes | None = None, group: ProcessGroup | None = None
    ) -> ServerState:
        """A state with its own metrics registry, labelled for ``settings``; not ready yet."""
        metrics = RuntimeMetrics(
            model=settings.served_name,
            version=settings.model_version,
            revision=settings.revision,
            track=settings.track,
            multiprocess_dir=group.directory if group is not None else None,
        )
        return cls(settings=settings, metrics=metrics, token=token, group=group)

    def attach(self, model: LoadedModel) -> None:
        """Serve ``model``: start its batcher (on the running loop) and watch the gauges."""
        batcher = Batcher(
            model.session, config=batching_config(self.settings), observer=self.metrics
        )
        batcher.start()
        self.model = model
        self.batcher = batcher
        self.input_specs = {spec.name: spec for spec in model.session.inputs}
        self.metrics.watch(in_flight=lambda: self.in_flight, queue_depth=lambda: batcher.queued)

    @property
    def ready(self) -> bool:
        return not self.readiness_problem()

    def readiness_problem(self) -> str:
        if self.draining:
            return "the server is shutting down"
        if self.not_ready_reason or self.group is None or self.group_ready:
            return self.not_ready_reason
        ready = self.group.ready_count()
        if ready < self.group.count:
            return f"{ready} of {self.group.count} server processes are ready"
        self.group_ready = True  # a sibling that exits takes the whole group down with it
        return ""

    def require_ready(self) -> tuple[LoadedModel, Batcher]:
        problem = self.readiness_problem()
        if problem or self.model is None or self.batcher is None:
            raise UnavailableError(f"model {self.settings.served_name!r} is not ready: {problem}")
        return self.model, self.batcher

    def authorize(self, header: str | None) -> None:
        """Check an ``Authorization`` value (HTTP header or gRPC metadata) in constant time."""
        if self.token is None:
            return
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise UnauthorizedError("missing bearer token: send 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(presented.strip().encode(), self.token):
            raise UnauthorizedError("invalid bearer token")

    def resolve_model(self, name: str, version: str | None) -> None:
        """404 unless ``name`` (and ``version``, when given) is the served model."""
        settings = self.settings
        if name != settings.served_name:
            raise NotFoundError(
                f"unknown model {name!r}; this server serves {settings.served_name!r}"
            )
        if version and version != settings.model_version:
            raise NotFoundError(
                f"unknown version {version!r} of model {name!r}; "
                f"the served version is {settings.model_version!r}"
            )

    def timeout_seconds(self) -> float | None:
        timeout_ms = self.settings.request_timeout_ms
        return timeout_ms / 1000 if timeout_ms else None

    def failed(self, record: RequestRecord, error: RuntimeServiceError) -> None:
        record.code = error.http_status
        if error.reason in REJECT_REASONS:
            self.metrics.rejected(error.reason)

    def tracked(self, protocol: str) -> RequestRecord:
        """Count an inference request in flight and record its code and latency when done."""
        return RequestRecord(self, protocol)


STATE = web.AppKey("state", ServerState)

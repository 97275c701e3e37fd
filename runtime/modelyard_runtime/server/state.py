"""What the handlers share: settings, metrics, the loaded model and the server's lifecycle flags.

Created by ``server.run``; reached by handlers through the ``STATE`` app key.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from modelyard_runtime.batching.scheduler import Batcher
from modelyard_runtime.datatypes import TensorSpec
from modelyard_runtime.errors import UnavailableError
from modelyard_runtime.metrics import RuntimeMetrics
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import LoadedModel


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

    def attach(self, model: LoadedModel, batcher: Batcher) -> None:
        self.model = model
        self.batcher = batcher
        self.input_specs = {spec.name: spec for spec in model.session.inputs}

    @property
    def ready(self) -> bool:
        return not self.readiness_problem()

    def readiness_problem(self) -> str:
        if self.draining:
            return "the server is shutting down"
        return self.not_ready_reason

    def require_ready(self) -> tuple[LoadedModel, Batcher]:
        problem = self.readiness_problem()
        if problem or self.model is None or self.batcher is None:
            raise UnavailableError(f"model {self.settings.served_name!r} is not ready: {problem}")
        return self.model, self.batcher

    def request_started(self) -> None:
        self.in_flight += 1
        self.idle.clear()
        self.metrics.in_flight.inc()

    def request_finished(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.dec()
        if not self.in_flight:
            self.idle.set()


STATE = web.AppKey("state", ServerState)

"""``DataPlane``: the one path every inference request takes, whatever its protocol.

A transport wraps a request in an ``Exchange`` (its protocol name, the model it names, its
credentials, how to decode its body and encode a reply) and awaits ``DataPlane.infer``, which
authorizes, finds the model, decodes, batches, encodes, and accounts for it: in flight, latency
and code (``modelyard_requests_total``), rejections by reason. Errors are ``RuntimeServiceError``s,
raised after they are counted; each transport maps them to its wire in one place.

Also here, for the metadata and health routes of every transport: auth, model lookup,
readiness and the model's description. Created by ``server.run`` (and tests); no I/O of its own.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Sequence
from typing import Protocol, TypeVar

from modelyard_runtime.batching.scheduler import Batcher, BatchingConfig
from modelyard_runtime.dataplane.metadata import ModelStatus, ServerMetadata
from modelyard_runtime.dataplane.model import ServedModel
from modelyard_runtime.dataplane.readiness import Readiness, Siblings
from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.errors import (
    NotFoundError,
    RuntimeServiceError,
    TooManyRowsError,
    UnauthorizedError,
    UnavailableError,
)
from modelyard_runtime.metrics import REJECT_REASONS, RuntimeMetrics
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import LoadedModel

Outputs = list[tuple[TensorSpec, Array]]  # the outputs asked for, in the order asked


class Decoded(Protocol):
    """A decoded request: checked feeds, and which outputs it wants (None: all)."""

    @property
    def feeds(self) -> dict[str, Array]: ...

    @property
    def output_names(self) -> Sequence[str] | None: ...


DecodedT = TypeVar("DecodedT", bound=Decoded)
ReplyT = TypeVar("ReplyT", covariant=True)


class Exchange(Protocol[DecodedT, ReplyT]):
    """One inference request as its transport presents it to the data plane."""

    @property
    def protocol(self) -> str:
        """The ``protocol`` metric label: rest, grpc, v1, ..."""
        ...

    @property
    def model_name(self) -> str: ...

    @property
    def model_version(self) -> str | None: ...

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` value (HTTP header or gRPC metadata)."""
        ...

    @property
    def deadline(self) -> float | None:
        """Seconds the client still waits, when it says (a gRPC deadline); else None."""
        ...

    async def decode(self, model: ServedModel) -> DecodedT: ...

    def encode(self, model: ServedModel, request: DecodedT, outputs: Outputs) -> ReplyT: ...


def batching_config(settings: Settings) -> BatchingConfig:
    return BatchingConfig(
        max_batch_size=settings.max_batch_size,
        max_queue_delay_s=settings.max_queue_delay_ms / 1000,
        max_queue_size=settings.max_queue_size,
        workers=settings.inference_workers,
    )


class DataPlane:
    """The served model, its readiness and its inference path."""

    def __init__(
        self,
        settings: Settings,
        metrics: RuntimeMetrics,
        *,
        token: bytes | None = None,
        siblings: Siblings | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.token = token
        self.readiness = Readiness(siblings)
        self.server_metadata = ServerMetadata()
        self.model: ServedModel | None = None
        self.batcher: Batcher | None = None
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        token: bytes | None = None,
        siblings: Siblings | None = None,
        metrics_dir: str | None = None,
    ) -> DataPlane:
        """A data plane with its own metrics registry, labelled for ``settings``; not ready yet.

        ``metrics_dir``: prometheus_client's multiprocess directory, shared with the siblings.
        """
        metrics = RuntimeMetrics(
            model=settings.served_name,
            version=settings.model_version,
            revision=settings.revision,
            track=settings.track,
            multiprocess_dir=metrics_dir,
        )
        return cls(settings, metrics, token=token, siblings=siblings)

    def attach(self, loaded: LoadedModel) -> None:
        """Serve ``loaded``: start its batcher (on the running loop) and watch the gauges."""
        batcher = Batcher(
            loaded.session, config=batching_config(self.settings), observer=self.metrics
        )
        batcher.start()
        self.model = ServedModel.of(
            name=self.settings.served_name,
            version=self.settings.model_version,
            session=loaded.session,
            sha256=loaded.sha256,
        )
        self.batcher = batcher
        self.metrics.watch(in_flight=lambda: self.in_flight, queue_depth=lambda: batcher.queued)

    # -- checks shared by every route --------------------------------------------------------

    def authorize(self, header: str | None) -> None:
        """Check an ``Authorization`` value (HTTP header or gRPC metadata) in constant time."""
        if self.token is None:
            return
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise UnauthorizedError("missing bearer token: send 'Authorization: Bearer <token>'")
        # aiohttp hands non-UTF-8 header bytes over as surrogate escapes; surrogatepass encodes
        # them (and any other surrogate) as bytes that are no valid UTF-8, so they match no token.
        presented_bytes = presented.strip().encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(presented_bytes, self.token):
            raise UnauthorizedError("invalid bearer token")

    def resolve(self, name: str, version: str | None) -> None:
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

    def check(
        self, authorization: str | None, name: str | None = None, version: str | None = None
    ) -> None:
        """What every metadata route checks: the credentials, then the model it names."""
        self.authorize(authorization)
        if name is not None:
            self.resolve(name, version)

    def loaded(self) -> ServedModel:
        """The model, once loaded (its metadata is known before it is Ready); else 503."""
        if self.model is None:
            raise UnavailableError(f"model {self.settings.served_name!r} is not loaded yet")
        return self.model

    def readiness_problem(self) -> str:
        return self.readiness.problem()

    @property
    def ready(self) -> bool:
        return not self.readiness.problem()

    def status(self) -> ModelStatus:
        return ModelStatus(
            name=self.settings.served_name,
            version=self.settings.model_version,
            loaded=self.model is not None,
            problem=self.readiness.problem(),
        )

    # -- inference ---------------------------------------------------------------------------

    async def infer(self, exchange: Exchange[DecodedT, ReplyT]) -> ReplyT:
        """Serve one inference request end to end; raise its ``RuntimeServiceError``."""
        started = time.perf_counter()
        self.in_flight += 1
        self.idle.clear()
        code = 500
        try:
            self.authorize(exchange.authorization)
            self.resolve(exchange.model_name, exchange.model_version)
            model, batcher = self._serving()
            request = await exchange.decode(model)
            self._check_rows(model, request.feeds)
            selected = model.select_outputs(request.output_names)
            timeout = self._timeout(exchange.deadline)
            results = await batcher.submit(request.feeds, timeout=timeout)
            outputs = [(model.outputs[index], results[index]) for index in selected]
            reply = exchange.encode(model, request, outputs)
            code = 200
            return reply
        except RuntimeServiceError as e:
            code = e.http_status
            if e.reason in REJECT_REASONS:
                self.metrics.rejected(e.reason)
            raise
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()
            self.metrics.request_done(exchange.protocol, code, time.perf_counter() - started)

    def _check_rows(self, model: ServedModel, feeds: dict[str, Array]) -> None:
        """413 for more rows than ``max_request_rows`` (a batchable model's first dimension)."""
        limit = self.settings.max_request_rows
        if not limit or not model.metadata.batchable:
            return
        for array in feeds.values():
            if array.ndim and array.shape[0] > limit:
                raise TooManyRowsError(
                    f"the request has {array.shape[0]} rows, over the limit of {limit} "
                    "(--max-request-rows); split it into smaller requests"
                )

    def _serving(self) -> tuple[ServedModel, Batcher]:
        problem = self.readiness.serving_problem()
        model, batcher = self.model, self.batcher
        if problem or model is None or batcher is None:
            raise UnavailableError(f"model {self.settings.served_name!r} is not ready: {problem}")
        return model, batcher

    def _timeout(self, deadline: float | None) -> float | None:
        own = self.settings.request_timeout_ms / 1000 or None
        if deadline is None:
            return own
        return deadline if own is None else min(own, deadline)

    async def drained(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        if self.batcher is not None and not await self.batcher.drain(timeout):
            return False
        try:
            await asyncio.wait_for(self.idle.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        return True

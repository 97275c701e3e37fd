"""OIP v2 over gRPC (``inference.GRPCInferenceService``) and ``grpc.health.v1``.

Translation only: ``_Infer`` decodes a ``ModelInferRequest`` with ``protocol.grpc_codec`` and
encodes the reply; ``DataPlane.infer`` does the rest, with the same auth (metadata
``authorization: Bearer …``), batcher and metrics (``protocol="grpc"``) as REST. ``_rpc`` is the
one place errors become gRPC status codes (``GRPC_CODES``), with the same messages as REST.
Connections end after ``max_connection_age_seconds`` (GOAWAY; the channel reconnects through the
Service, design §4). Started and stopped by ``server.listeners``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelyard_runtime.dataplane.model import ServedModel
from modelyard_runtime.dataplane.plane import DataPlane, Outputs
from modelyard_runtime.errors import RuntimeServiceError
from modelyard_runtime.protocol import grpc_codec
from modelyard_runtime.protocol.oip import InferRequest
from modelyard_runtime.protocol.pb import inference_pb2 as pb
from modelyard_runtime.protocol.pb import inference_pb2_grpc

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"

# HTTP-style status of a RuntimeServiceError -> gRPC status code.
GRPC_CODES: Final[dict[int, grpc.StatusCode]] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

Request = TypeVar("Request")
Response = TypeVar("Response")
Method = Callable[[Any, Request, Any], Awaitable[Response]]


def _rpc(method: Method[Request, Response]) -> Method[Request, Response]:
    """Run an RPC; a ``RuntimeServiceError`` (or anything unexpected) aborts it with its code."""

    @functools.wraps(method)
    async def rpc(self: Any, request: Request, context: Any) -> Response:
        try:
            return await method(self, request, context)
        except RuntimeServiceError as e:
            code = GRPC_CODES.get(e.http_status, grpc.StatusCode.UNKNOWN)
            await context.abort(code, e.message)
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal server error")
        raise AssertionError("context.abort returned")  # pragma: no cover

    return rpc


def _authorization(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return None


class _Infer:
    """``ModelInfer`` as an ``Exchange``: typed or raw contents in, raw contents out."""

    __slots__ = ("_request", "_thread_bytes", "authorization", "deadline")
    protocol = "grpc"

    def __init__(self, request: pb.ModelInferRequest, context: Any, thread_bytes: int) -> None:
        self._request = request
        self._thread_bytes = thread_bytes
        self.authorization = _authorization(context)
        self.deadline: float | None = context.time_remaining()

    @property
    def model_name(self) -> str:
        return self._request.model_name

    @property
    def model_version(self) -> str | None:
        return self._request.model_version or None

    async def decode(self, model: ServedModel) -> InferRequest:
        request = self._request
        if (
            grpc_codec.typed_bytes(request) >= self._thread_bytes
        ):  # a large one leaves the loop free
            return await asyncio.to_thread(grpc_codec.decode_model_infer, request, model.inputs)
        return grpc_codec.decode_model_infer(request, model.inputs)

    def encode(
        self, model: ServedModel, request: InferRequest, outputs: Outputs
    ) -> pb.ModelInferResponse:
        return grpc_codec.encode_model_infer(
            model_name=model.name,
            model_version=model.version,
            request_id=request.id,
            outputs=outputs,
        )


class InferenceService:
    """Implements the six OIP RPCs; registered with the generated ``add_…_to_server``."""

    def __init__(self, plane: DataPlane) -> None:
        self._plane = plane

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Any
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Any
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._plane.ready)

    @_rpc
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Any
    ) -> pb.ModelReadyResponse:
        self._plane.check(_authorization(context), request.name, request.version)
        return pb.ModelReadyResponse(ready=self._plane.ready)

    @_rpc
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Any
    ) -> pb.ServerMetadataResponse:
        self._plane.check(_authorization(context))
        meta = self._plane.server_metadata
        return pb.ServerMetadataResponse(
            name=meta.name, version=meta.version, extensions=list(meta.extensions)
        )

    @_rpc
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        self._plane.check(_authorization(context), request.name, request.version)
        meta = self._plane.loaded().metadata
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta.name,
            versions=list(meta.versions),
            platform=meta.platform,
            inputs=[tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in meta.inputs],
            outputs=[tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in meta.outputs],
            properties={key: str(value) for key, value in meta.properties.items()},
        )

    @_rpc
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Any
    ) -> pb.ModelInferResponse:
        plane = self._plane
        return await plane.infer(_Infer(request, context, plane.settings.decode_thread_bytes))


class GrpcServer:
    """The grpc.aio server with the inference and health services."""

    def __init__(self, plane: DataPlane, *, reuse_port: bool) -> None:
        settings = plane.settings
        options: list[tuple[str, int]] = [
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", int(reuse_port)),
        ]
        if settings.max_connection_age_seconds > 0:
            # GOAWAY after the age (grpc adds +-10 % jitter); RPCs in flight get the grace.
            options += [
                ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
                ("grpc.max_connection_age_grace_ms", int(settings.shutdown_grace_seconds * 1000)),
            ]
        self._server = grpc.aio.server(options=options)
        inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            InferenceService(plane), self._server
        )
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self.port = self._server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
        self._host = settings.host

    async def start(self) -> None:
        await self.set_serving(False)
        await self._server.start()
        log.info("listening on grpc://%s:%d", self._host, self.port)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE):
            await self._health.set(service, status)

    async def stop(self, grace: float) -> None:
        """Stop listening and send GOAWAY; RPCs in flight get ``grace`` seconds to finish."""
        await self._server.stop(grace)

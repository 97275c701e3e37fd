"""The OIP v2 gRPC service (``inference.GRPCInferenceService``) and ``grpc.health.v1``.

Shares the REST server's state, batcher, metrics (``protocol="grpc"``) and auth (metadata
``authorization: Bearer …``). Errors map to gRPC status codes in ``GRPC_CODES``, the one place,
with the same messages as REST. Started and stopped by ``server.run``.
"""

from __future__ import annotations

import logging
from typing import Any, Final, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelyard_runtime import __version__
from modelyard_runtime.errors import RuntimeServiceError, UnavailableError
from modelyard_runtime.protocol import grpc_codec, oip
from modelyard_runtime.protocol.pb import inference_pb2 as pb
from modelyard_runtime.protocol.pb import inference_pb2_grpc
from modelyard_runtime.server.state import ServerState
from modelyard_runtime.server.v2 import EXTENSIONS, PLATFORM

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"

# HTTP-style status of a RuntimeServiceError -> gRPC status code.
GRPC_CODES: Final[dict[int, grpc.StatusCode]] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


async def _abort(context: Any, error: RuntimeServiceError) -> NoReturn:
    await context.abort(GRPC_CODES.get(error.http_status, grpc.StatusCode.UNKNOWN), error.message)
    raise AssertionError("context.abort returned")  # pragma: no cover


def _authorization(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return None


class InferenceService:
    """Implements the six OIP RPCs; registered with the generated ``add_…_to_server``."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    async def _guard(self, context: Any, name: str | None = None, version: str = "") -> None:
        try:
            self._state.authorize(_authorization(context))
            if name is not None:
                self._state.resolve_model(name, version)
        except RuntimeServiceError as e:
            await _abort(context, e)

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Any
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Any
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._state.ready)

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Any
    ) -> pb.ModelReadyResponse:
        await self._guard(context, request.name, request.version)
        return pb.ModelReadyResponse(ready=self._state.ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Any
    ) -> pb.ServerMetadataResponse:
        await self._guard(context)
        return pb.ServerMetadataResponse(
            name="modelyard", version=__version__, extensions=list(EXTENSIONS)
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        await self._guard(context, request.name, request.version)
        state = self._state
        if state.model is None:
            await _abort(context, UnavailableError("the model is not loaded yet"))
        session = state.model.session
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=state.settings.served_name,
            versions=[state.settings.model_version],
            platform=PLATFORM,
            inputs=[
                tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in session.inputs
            ],
            outputs=[
                tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in session.outputs
            ],
            properties={key: str(value) for key, value in state.model.properties.items()},
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Any
    ) -> pb.ModelInferResponse:
        state = self._state
        with state.tracked("grpc") as record:
            try:
                state.authorize(_authorization(context))
                state.resolve_model(request.model_name, request.model_version)
                model, batcher = state.require_ready()
                decoded = grpc_codec.decode_model_infer(request, state.input_specs)
                selected = oip.select_outputs(decoded, model.session.outputs)
                timeout = state.timeout_seconds()
                remaining = context.time_remaining()
                if remaining is not None:
                    timeout = remaining if timeout is None else min(timeout, remaining)
                outputs = await batcher.submit(decoded.feeds, timeout=timeout)
            except RuntimeServiceError as e:
                state.failed(record, e)
                await _abort(context, e)
            record.code = 200
            return grpc_codec.encode_model_infer(
                model_name=state.settings.served_name,
                model_version=state.settings.model_version,
                request_id=decoded.id,
                outputs=[(spec, outputs[index]) for index, spec, _ in selected],
            )


class GrpcServer:
    """The grpc.aio server with the inference and health services."""

    def __init__(self, state: ServerState) -> None:
        settings = state.settings
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", int(state.group is not None)),
            ]
        )
        inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            InferenceService(state), self._server
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
        await self._server.stop(grace)

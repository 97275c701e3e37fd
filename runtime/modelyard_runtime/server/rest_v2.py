"""Open Inference Protocol v2 over REST: server/model metadata, readiness, config, infer.

Translation only: ``_Infer`` decodes a request with ``protocol.oip`` and encodes the reply, and
``DataPlane.infer`` does the rest. Errors are raised and mapped by ``rest.edge``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelyard_runtime.dataplane.metadata import ModelMetadata
from modelyard_runtime.dataplane.model import ServedModel
from modelyard_runtime.dataplane.plane import DataPlane, Outputs
from modelyard_runtime.datatypes import TensorSpec, triton_config_type
from modelyard_runtime.protocol import oip
from modelyard_runtime.server import rest
from modelyard_runtime.server.decoding import BodyDecoder
from modelyard_runtime.server.rest import json_response
from modelyard_runtime.settings import Settings


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def render_model_metadata(metadata: ModelMetadata) -> dict[str, Any]:
    return {
        "name": metadata.name,
        "versions": list(metadata.versions),
        "platform": metadata.platform,
        "inputs": [_tensor(spec) for spec in metadata.inputs],
        "outputs": [_tensor(spec) for spec in metadata.outputs],
        "parameters": dict(metadata.properties),
    }


async def server_metadata(request: web.Request, plane: DataPlane) -> web.StreamResponse:
    meta = plane.server_metadata
    return json_response(
        {"name": meta.name, "version": meta.version, "extensions": list(meta.extensions)}
    )


async def model_metadata(request: web.Request, plane: DataPlane) -> web.StreamResponse:
    return json_response(render_model_metadata(plane.loaded().metadata))


async def model_ready(request: web.Request, plane: DataPlane) -> web.StreamResponse:
    status = plane.status()
    body: dict[str, Any] = {"name": status.name, "ready": status.ready}
    if status.problem:
        body["reason"] = status.problem
    return json_response(body, status=200 if status.ready else 503)


def _config_tensor(spec: TensorSpec, batched: bool) -> dict[str, Any]:
    dims = list(spec.shape[1:] if batched else spec.shape)
    return {"name": spec.name, "data_type": triton_config_type(spec.datatype), "dims": dims}


async def model_config(request: web.Request, plane: DataPlane) -> web.StreamResponse:
    """Triton's model configuration, enough for perf_analyzer and tritonclient."""
    model = plane.loaded()
    meta, settings = model.metadata, plane.settings
    batched = meta.batchable
    gpu = model.session.execution_provider != "cpu"
    return json_response(
        {
            "name": meta.name,
            "platform": meta.platform,
            "backend": "onnxruntime",
            "version_policy": {"specific": {"versions": list(meta.versions)}},
            "max_batch_size": settings.max_batch_size if batched else 0,
            "input": [_config_tensor(spec, batched) for spec in meta.inputs],
            "output": [_config_tensor(spec, batched) for spec in meta.outputs],
            "dynamic_batching": {
                "max_queue_delay_microseconds": int(settings.max_queue_delay_ms * 1000),
                "default_queue_policy": {
                    "max_queue_size": settings.max_queue_size,
                    "default_timeout_microseconds": settings.request_timeout_ms * 1000,
                },
            },
            "instance_group": [
                {"count": settings.inference_workers, "kind": "KIND_GPU" if gpu else "KIND_CPU"}
            ],
        }
    )


class _Infer:
    """``POST …/infer`` as an ``Exchange``: JSON or binary tensors in, the same out."""

    __slots__ = (
        "_decoder",
        "_request",
        "_settings",
        "authorization",
        "model_name",
        "model_version",
    )
    protocol = "rest"
    deadline = None

    def __init__(self, request: web.Request, settings: Settings, decoder: BodyDecoder) -> None:
        self._request = request
        self._settings = settings
        self._decoder = decoder
        info = request.match_info
        self.model_name = info["model"]
        self.model_version = info.get("version")
        self.authorization = request.headers.get("Authorization")

    async def decode(self, model: ServedModel) -> oip.InferRequest:
        request = self._request
        rest.check_content_type(request)
        length = rest.header_length(request)
        body = await rest.read_body(request, self._settings, self._decoder)
        return await self._decoder.decode(
            oip.decode_infer, body, length, model.inputs, json_bytes=length
        )

    def encode(
        self, model: ServedModel, request: oip.InferRequest, outputs: Outputs
    ) -> web.Response:
        encoded = oip.encode_infer(
            model_name=model.name,
            model_version=model.version,
            request=request,
            outputs=[
                (spec, array, request.wants_binary(position))
                for position, (spec, array) in enumerate(outputs)
            ],
        )
        response = web.Response(body=encoded.body, content_type=encoded.content_type)
        if encoded.header_length is not None:
            response.headers["Inference-Header-Content-Length"] = str(encoded.header_length)
        return response


def add_routes(app: web.Application, plane: DataPlane, decoder: BodyDecoder) -> None:
    async def infer(request: web.Request) -> web.StreamResponse:
        return await plane.infer(_Infer(request, plane.settings, decoder))

    router = app.router
    prefixes = ("/v2/models/{model}", "/v2/models/{model}/versions/{version}")
    for prefix in prefixes:  # first: the router tries the routes of a prefix in this order
        router.add_post(prefix + "/infer", infer)
    router.add_get("/v2", rest.guarded(plane, server_metadata))
    for prefix in prefixes:
        router.add_get(prefix, rest.guarded(plane, model_metadata))
        router.add_get(prefix + "/ready", rest.guarded(plane, model_ready))
        router.add_get(prefix + "/config", rest.guarded(plane, model_config))

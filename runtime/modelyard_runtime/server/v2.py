"""Open Inference Protocol v2 REST routes: server/model metadata, readiness, config, infer.

Handlers decode with ``protocol.oip``, run through the shared batcher, and encode the reply;
errors are raised and mapped by the ``guards`` wrappers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelyard_runtime import __version__
from modelyard_runtime.datatypes import TensorSpec, triton_config_type
from modelyard_runtime.errors import UnavailableError
from modelyard_runtime.protocol import oip
from modelyard_runtime.server import guards
from modelyard_runtime.server.responses import json_response
from modelyard_runtime.server.state import ServerState
from modelyard_runtime.startup import LoadedModel

EXTENSIONS = ("binary_tensor_data", "model_configuration")
PLATFORM = "onnxruntime_onnx"


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def _loaded(state: ServerState) -> LoadedModel:
    if state.model is None:
        raise UnavailableError(f"model {state.settings.served_name!r} is not loaded yet")
    return state.model


async def server_metadata(request: web.Request, state: ServerState) -> web.StreamResponse:
    return json_response({"name": "modelyard", "version": __version__, "extensions": EXTENSIONS})


async def model_metadata(request: web.Request, state: ServerState) -> web.StreamResponse:
    model = _loaded(state)
    session = model.session
    return json_response(
        {
            "name": state.settings.served_name,
            "versions": [state.settings.model_version],
            "platform": PLATFORM,
            "inputs": [_tensor(spec) for spec in session.inputs],
            "outputs": [_tensor(spec) for spec in session.outputs],
            "parameters": model.properties,
        }
    )


async def model_ready(request: web.Request, state: ServerState) -> web.StreamResponse:
    problem = state.readiness_problem()
    body: dict[str, Any] = {"name": state.settings.served_name, "ready": not problem}
    if problem:
        body["reason"] = problem
    return json_response(body, status=503 if problem else 200)


def _config_tensor(spec: TensorSpec, batched: bool) -> dict[str, Any]:
    dims = list(spec.shape[1:] if batched else spec.shape)
    return {"name": spec.name, "data_type": triton_config_type(spec.datatype), "dims": dims}


async def model_config(request: web.Request, state: ServerState) -> web.StreamResponse:
    """Triton's model configuration, enough for perf_analyzer and tritonclient."""
    session = _loaded(state).session
    settings = state.settings
    batched = all(spec.batchable for spec in (*session.inputs, *session.outputs))
    gpu = session.execution_provider != "cpu"
    return json_response(
        {
            "name": settings.served_name,
            "platform": PLATFORM,
            "backend": "onnxruntime",
            "version_policy": {"specific": {"versions": [settings.model_version]}},
            "max_batch_size": settings.max_batch_size if batched else 0,
            "input": [_config_tensor(spec, batched) for spec in session.inputs],
            "output": [_config_tensor(spec, batched) for spec in session.outputs],
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


async def infer(request: web.Request, state: ServerState) -> web.StreamResponse:
    model, batcher = state.require_ready()
    guards.check_content_type(request)
    body = await guards.read_body(request, state.settings.max_request_bytes)
    decoded = oip.decode_infer(body, guards.header_length(request), state.input_specs)
    selected = oip.select_outputs(decoded, model.session.outputs)
    outputs = await batcher.submit(decoded.feeds, timeout=state.timeout_seconds())
    encoded = oip.encode_infer(
        model_name=state.settings.served_name,
        model_version=state.settings.model_version,
        request=decoded,
        outputs=[(spec, outputs[index], binary) for index, spec, binary in selected],
    )
    response = web.Response(body=encoded.body, content_type=encoded.content_type)
    if encoded.header_length is not None:
        response.headers["Inference-Header-Content-Length"] = str(encoded.header_length)
    return response


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/v2", guards.guarded(server_metadata))
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        router.add_get(prefix, guards.guarded(model_metadata))
        router.add_get(prefix + "/ready", guards.guarded(model_ready))
        router.add_get(prefix + "/config", guards.guarded(model_config))
        router.add_post(prefix + "/infer", guards.inference_endpoint("rest", infer))

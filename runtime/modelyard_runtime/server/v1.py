"""TF-Serving REST v1 routes: ``POST /v1/models/{m}[/versions/{v}]:predict`` and model status."""

from __future__ import annotations

from aiohttp import web

from modelyard_runtime.protocol import tfserving
from modelyard_runtime.server import guards
from modelyard_runtime.server.responses import JSON, json_response
from modelyard_runtime.server.state import ServerState

_NAME = "{model:[^/:]+}"
_VERSION = "{version:[^/:]+}"


async def predict(request: web.Request, state: ServerState) -> web.StreamResponse:
    model, batcher = state.require_ready()
    guards.check_content_type(request)
    body = await guards.read_body(request, state.settings.max_request_bytes)
    decoded = tfserving.decode_predict(body, state.input_specs)
    outputs = await batcher.submit(decoded.feeds, timeout=state.timeout_seconds())
    payload = tfserving.encode_predict(decoded, model.session.outputs, outputs)
    return web.Response(body=payload, content_type=JSON)


async def model_status(request: web.Request, state: ServerState) -> web.StreamResponse:
    problem = state.readiness_problem()
    status = "AVAILABLE" if not problem else ("LOADING" if state.model is None else "UNAVAILABLE")
    return json_response(
        {
            "name": state.settings.served_name,
            "ready": not problem,
            "model_version_status": [
                {
                    "version": state.settings.model_version,
                    "state": status,
                    "status": {
                        "error_code": "OK" if not problem else "UNAVAILABLE",
                        "error_message": problem,
                    },
                }
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    router = app.router
    for prefix in (f"/v1/models/{_NAME}", f"/v1/models/{_NAME}/versions/{_VERSION}"):
        router.add_post(prefix + ":predict", guards.inference_endpoint("v1", predict))
        router.add_get(prefix, guards.guarded(model_status))

"""The aiohttp application factory: health, metrics and OpenAPI here; protocols in v2/v1."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from modelyard_runtime.server import openapi, v1, v2
from modelyard_runtime.server.responses import json_errors, json_response
from modelyard_runtime.server.state import STATE, ServerState


async def live(request: web.Request) -> web.StreamResponse:
    return json_response({"live": True})


async def ready(request: web.Request) -> web.StreamResponse:
    problem = request.app[STATE].readiness_problem()
    if problem:
        return json_response({"ready": False, "reason": problem}, status=503)
    return json_response({"ready": True})


async def metrics(request: web.Request) -> web.StreamResponse:
    body = request.app[STATE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_document(request: web.Request) -> web.StreamResponse:
    return json_response(openapi.document())


def build_app(state: ServerState) -> web.Application:
    app = web.Application(
        client_max_size=state.settings.max_request_bytes, middlewares=[json_errors]
    )
    app[STATE] = state
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_document)
    v2.add_routes(app)
    v1.add_routes(app)
    return app

"""The aiohttp application factory: health, metrics and OpenAPI here; protocols in rest_v2/v1.

``build_app`` is called by ``server.listeners`` and by tests with a ``DataPlane``. With
``Settings.metrics_port`` set, ``/metrics`` leaves the HTTP port for ``metrics_app`` on its own
port (so a NetworkPolicy can open it to the monitoring namespace only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.server import openapi, rest, rest_v1, rest_v2
from modelyard_runtime.server.connections import ConnectionAges
from modelyard_runtime.server.decoding import BodyDecoder
from modelyard_runtime.server.rest import json_response


def build_app(plane: DataPlane, ages: ConnectionAges | None = None) -> web.Application:
    """The REST surface of ``plane``; ``ages`` marks the connections to close (none if None)."""

    async def live(request: web.Request) -> web.StreamResponse:
        return json_response({"live": True})

    async def ready(request: web.Request) -> web.StreamResponse:
        problem = plane.readiness_problem()
        if problem:
            return json_response({"ready": False, "reason": problem}, status=503)
        return json_response({"ready": True})

    async def openapi_document(request: web.Request) -> web.StreamResponse:
        return json_response(openapi.document())

    settings = plane.settings
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        middlewares=[rest.edge(plane, ages or ConnectionAges(0))],
        # Bodies are inflated by ``rest.read_body`` (bounded, off the loop when large), never by
        # aiohttp as they arrive; idle kept-alive connections end after the keep-alive timeout.
        handler_args={
            "auto_decompress": False,
            "keepalive_timeout": settings.keepalive_timeout_seconds,
        },
    )
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    if plane.settings.metrics_port is None:
        app.router.add_get("/metrics", _metrics_handler(plane))
    app.router.add_get("/openapi.json", openapi_document)
    decoder = BodyDecoder(settings)
    rest_v2.add_routes(app, plane, decoder)
    rest_v1.add_routes(app, plane, decoder)

    async def close_decoder(app: web.Application) -> None:
        decoder.close()

    app.on_cleanup.append(close_decoder)
    return app


def _metrics_handler(plane: DataPlane) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def metrics(request: web.Request) -> web.StreamResponse:
        body = plane.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def metrics_app(plane: DataPlane) -> web.Application:
    """Only ``GET /metrics``: what the separate metrics port serves."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics_handler(plane))
    return app

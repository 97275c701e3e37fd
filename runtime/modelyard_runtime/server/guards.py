"""Checks shared by the routes: auth, model/version lookup, body reading, and the inference wrapper.

``inference_endpoint`` wraps each inference route: ``ServerState.tracked`` counts it in flight
and records ``modelyard_requests_total`` and the latency histogram with the final status code; a
``RuntimeServiceError`` becomes its response through ``responses.error_response``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from modelyard_runtime.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    RuntimeServiceError,
    UnsupportedMediaTypeError,
)
from modelyard_runtime.server.responses import error_response, json_response
from modelyard_runtime.server.state import STATE, ServerState

log = logging.getLogger(__name__)

Handler = Callable[[web.Request, ServerState], Awaitable[web.StreamResponse]]

ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "application/octet-stream", "text/json"})


def check_auth(request: web.Request, state: ServerState) -> None:
    state.authorize(request.headers.get("Authorization"))


def check_model(request: web.Request, state: ServerState) -> None:
    state.resolve_model(request.match_info["model"], request.match_info.get("version"))


def check_content_type(request: web.Request) -> None:
    raw = request.headers.get("Content-Type")
    if raw is None:
        return
    mime = raw.partition(";")[0].strip().lower()
    if mime not in ACCEPTED_CONTENT_TYPES and not mime.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type {mime!r} is not supported: send application/json, or "
            "application/octet-stream with Inference-Header-Content-Length for binary tensors"
        )


async def read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLargeError(f"request body of {length} bytes is over the {limit}-byte limit")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as e:
        raise PayloadTooLargeError(f"request body is over the {limit}-byte limit") from e


def header_length(request: web.Request) -> int | None:
    raw = request.headers.get("Inference-Header-Content-Length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInputError(
            f"Inference-Header-Content-Length must be an integer, got {raw!r}"
        ) from None


def inference_endpoint(
    protocol: str, handler: Handler
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        with state.tracked(protocol) as record:
            try:
                check_auth(request, state)
                check_model(request, state)
                response = await handler(request, state)
            except RuntimeServiceError as e:
                state.failed(record, e)
                return error_response(e)
            except Exception:
                log.exception("unexpected error while serving %s %s", request.method, request.path)
                return json_response({"error": "internal server error"}, status=500)
            record.code = response.status
            return response

    return endpoint


def guarded(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Metadata routes: auth and model lookup, errors mapped, not counted as inference."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        try:
            check_auth(request, state)
            if "model" in request.match_info:
                check_model(request, state)
            return await handler(request, state)
        except RuntimeServiceError as e:
            return error_response(e)

    return endpoint

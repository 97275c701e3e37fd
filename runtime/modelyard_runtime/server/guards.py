"""Checks shared by the routes: auth, model/version lookup, body reading, and the inference wrapper.

``inference_endpoint`` wraps each inference route: it counts the request in flight, maps a
``RuntimeServiceError`` to its response (through ``responses.error_response``), and records
``modelyard_requests_total`` and the latency histogram with the final status code.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from modelyard_runtime.errors import (
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RuntimeServiceError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from modelyard_runtime.metrics import REJECT_REASONS
from modelyard_runtime.server.responses import error_response, json_response
from modelyard_runtime.server.state import STATE, ServerState

log = logging.getLogger(__name__)

Handler = Callable[[web.Request, ServerState], Awaitable[web.StreamResponse]]

ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "application/octet-stream", "text/json"})


def check_auth(request: web.Request, state: ServerState) -> None:
    if state.token is None:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise UnauthorizedError("missing bearer token: send 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(presented.strip().encode(), state.token):
        raise UnauthorizedError("invalid bearer token")


def check_model(request: web.Request, state: ServerState) -> None:
    """404 unless the path names the served model (and, if given, its version)."""
    settings = state.settings
    name = request.match_info["model"]
    if name != settings.served_name:
        raise NotFoundError(f"unknown model {name!r}; this server serves {settings.served_name!r}")
    version = request.match_info.get("version")
    if version is not None and version != settings.model_version:
        raise NotFoundError(
            f"unknown version {version!r} of model {name!r}; "
            f"the served version is {settings.model_version!r}"
        )


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


def timeout_seconds(state: ServerState) -> float | None:
    timeout_ms = state.settings.request_timeout_ms
    return timeout_ms / 1000 if timeout_ms else None


def inference_endpoint(
    protocol: str, handler: Handler
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        started = time.perf_counter()
        state.request_started()
        code = 500
        try:
            check_auth(request, state)
            check_model(request, state)
            response = await handler(request, state)
            code = response.status
            return response
        except RuntimeServiceError as e:
            code = e.http_status
            if e.reason in REJECT_REASONS:
                state.metrics.rejected(e.reason)
            return error_response(e)
        except Exception:
            log.exception("unexpected error while serving %s %s", request.method, request.path)
            return json_response({"error": "internal server error"}, status=500)
        finally:
            state.request_finished()
            state.metrics.request_done(protocol, code, time.perf_counter() - started)

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

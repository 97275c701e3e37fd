"""The one place where errors become HTTP responses, and the JSON helpers every route uses."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from modelyard_runtime.errors import QueueFullError, RuntimeServiceError, UnauthorizedError

JSON = "application/json"


def json_response(payload: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON)


def error_response(error: RuntimeServiceError) -> web.Response:
    response = json_response({"error": error.message}, status=error.http_status)
    if isinstance(error, QueueFullError):
        response.headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, UnauthorizedError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="modelyard"'
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn aiohttp's own plain-text errors (404 route, 405 method) into ``{"error": ...}``."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return json_response({"error": e.reason}, status=e.status)
    return response

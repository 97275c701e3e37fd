"""What the REST transports (``rest_v2``, ``rest_v1``) share: the edge middleware, where every
error becomes an HTTP response (the one place) and connections are told to close; body reading
and header parsing; JSON responses; the guard of the metadata routes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.errors import (
    BodyTimeoutError,
    ClientClosedError,
    InvalidInputError,
    MalformedBodyError,
    PayloadTooLargeError,
    QueueFullError,
    RuntimeServiceError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from modelyard_runtime.protocol import content_coding
from modelyard_runtime.server.connections import ConnectionAges
from modelyard_runtime.server.decoding import BodyDecoder
from modelyard_runtime.settings import Settings

log = logging.getLogger(__name__)

JSON: Final = "application/json"
ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "application/octet-stream", "text/json"})

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(payload: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON)


def error_response(error: RuntimeServiceError) -> web.Response:
    response = json_response({"error": error.message}, status=error.http_status)
    if isinstance(error, QueueFullError):
        response.headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, UnauthorizedError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="modelyard"'
    return response


def edge(plane: DataPlane, ages: ConnectionAges) -> Middleware:
    """The middleware around every route: errors to ``{"error": ...}`` responses, and
    ``Connection: close`` on a connection past its age or on any response while draining."""
    readiness = plane.readiness

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except RuntimeServiceError as e:
            response = error_response(e)
            if e.close_connection:  # do not read (linger over) the rest of a bad body
                response.force_close()
        except web.HTTPException as e:  # aiohttp's own: 404 route, 405 method
            if e.status < 400:
                raise
            response = json_response({"error": e.reason}, status=e.status)
        except Exception:
            log.exception("unexpected error while serving %s %s", request.method, request.path)
            response = json_response({"error": "internal server error"}, status=500)
        if readiness.draining or request.protocol in ages.expired:
            response.force_close()
        return response

    return middleware


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


async def read_body(
    request: web.Request, settings: Settings, bulk: BodyDecoder | None = None
) -> bytes:
    """The whole body, inflated: 413 past ``max_request_bytes`` (before or after inflating), 408
    when it takes longer than ``body_timeout_seconds``, 400 when its framing or coding is broken,
    415 for an unknown coding; ``ClientClosedError`` when the client goes away meanwhile.
    Inflating past ``decode_thread_bytes`` goes on in ``bulk``'s low-priority threads."""
    limit = settings.max_request_bytes
    coding = content_coding.coding(request.headers.get("Content-Encoding"))
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLargeError(f"request body of {length} bytes is over the {limit}-byte limit")
    timeout = settings.body_timeout_seconds
    try:
        if request.content.is_eof() or not timeout:  # all here already: nothing to time
            body = await request.read()
        else:
            async with asyncio.timeout(timeout):
                body = await request.read()
    except TimeoutError as e:
        raise BodyTimeoutError(f"the request body did not arrive within {timeout:g} s") from e
    except web.HTTPRequestEntityTooLarge as e:
        raise PayloadTooLargeError(f"request body is over the {limit}-byte limit") from e
    except ConnectionError as e:
        raise ClientClosedError("the client closed the connection during the body") from e
    except (HttpProcessingError, web.RequestPayloadError) as e:
        raise MalformedBodyError(f"the request body is malformed: {e}") from e
    if coding is None:
        return body
    inflater = content_coding.Inflater(coding, body, limit)
    inflater.step(settings.decode_thread_bytes)
    if not inflater.done:
        if bulk is None:
            await asyncio.to_thread(inflater.step)
        else:
            try:
                await bulk.in_thread(inflater.step)
            finally:
                bulk.trimmer.after_large_body()
    return inflater.result()


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


def guarded(
    plane: DataPlane, handler: Callable[[web.Request, DataPlane], Awaitable[web.StreamResponse]]
) -> Route:
    """A metadata route: the credentials and the model it names are checked first."""

    async def route(request: web.Request) -> web.StreamResponse:
        info = request.match_info
        plane.check(request.headers.get("Authorization"), info.get("model"), info.get("version"))
        return await handler(request, plane)

    return route

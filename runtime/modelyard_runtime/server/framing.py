"""aiohttp's own answers in the runtime's JSON error body.

Before a request reaches a route (and the ``rest.edge`` middleware), aiohttp answers what it
cannot parse itself: a bad request line, a header over 8 KiB, a bad ``Content-Length`` or chunk
size (400), with plain text. ``JsonErrorRunner`` serves the app with a request handler whose
``handle_error`` writes ``{"error": ...}`` instead, and logs a client's framing error at DEBUG
(it is the client's fault, and anyone can send one). Used by ``server.listeners``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Final

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)

MAX_MESSAGE: Final = 300  # a parser message may quote the client's bytes


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
        else:
            log.debug("malformed request from %s: %s", request.remote, message or exc)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was sent already; no room for the error")
        text = (message or _phrase(status))[:MAX_MESSAGE]
        if status >= 500:
            text = "internal server error"
        response = web.Response(
            body=orjson.dumps({"error": text}), status=status, content_type="application/json"
        )
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer framing errors with the JSON error body."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # same object, one method more: no other state
        return server

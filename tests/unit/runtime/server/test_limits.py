"""Limits and hostile input in-process: content codings, bombs, rows, slow bodies, bad tokens,
framing errors; every refusal is the JSON error body, and the server serves on."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hack.testbed.metrics_text import value
from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.datatypes import TensorSpec
from modelyard_runtime.errors import UnauthorizedError, UnavailableError
from modelyard_runtime.protocol import oip
from modelyard_runtime.server.app import build_app
from modelyard_runtime.server.decoding import BodyDecoder
from modelyard_runtime.server.framing import JsonErrorRunner
from modelyard_runtime.settings import Settings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]

INFER = "/v2/models/tiny/infer"
JSON = {"Content-Type": "application/json"}
BODY = orjson.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
)

_RAW = zlib.compressobj(wbits=-15)
RAW_DEFLATE = _RAW.compress(BODY) + _RAW.flush()  # "deflate" without the zlib wrapper


def rows_body(rows: int) -> bytes:
    data = [1.0] * (rows * 4)
    return orjson.dumps(
        {"inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": data}]}
    )


async def client_for(make: MakeClient, plane: DataPlane, **settings: Any) -> Client:
    plane.settings = dataclasses.replace(plane.settings, **settings)
    return await make(build_app(plane))


async def error_of(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    payload = await response.json()
    assert set(payload) == {"error"}
    message: str = payload["error"]
    return message


async def served(client: Client) -> None:
    response = await client.post(INFER, data=BODY, headers=JSON)
    assert response.status == 200
    assert (await response.json())["outputs"][0]["data"] == [2, 4, 6, 8]


@pytest.mark.parametrize(
    ("coding", "packed"),
    [
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", RAW_DEFLATE),
        ("identity", BODY),
    ],
)
async def test_compressed_bodies_are_inflated(
    aiohttp_client: MakeClient, tiny_plane: DataPlane, coding: str, packed: bytes
) -> None:
    client = await client_for(aiohttp_client, tiny_plane)
    response = await client.post(INFER, data=packed, headers={**JSON, "Content-Encoding": coding})
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("thread_bytes", [0, 1 << 30])
@pytest.mark.parametrize(
    ("coding", "packed", "status", "message"),
    [
        ("gzip", BODY, 400, "not valid gzip"),
        ("gzip", gzip.compress(BODY)[:-12], 400, "truncated"),
        ("gzip", gzip.compress(BODY) + b"junk", 400, "data after the end"),
        ("deflate", b"\x00\x01\x02", 400, "deflate"),
        ("br", BODY, 415, "not supported"),
        ("gzip, deflate", BODY, 415, "only one content coding"),
        ("gzip", gzip.compress(bytes(8 << 20)), 413, "inflates to more than"),
    ],
)
async def test_bodies_that_do_not_inflate_are_4xx(
    aiohttp_client: MakeClient,
    tiny_plane: DataPlane,
    coding: str,
    packed: bytes,
    status: int,
    message: str,
    thread_bytes: int,
) -> None:
    client = await client_for(
        aiohttp_client, tiny_plane, max_request_bytes=1 << 20, decode_thread_bytes=thread_bytes
    )
    response = await client.post(INFER, data=packed, headers={**JSON, "Content-Encoding": coding})
    assert message in await error_of(response, status)
    await served(client)


@pytest.mark.parametrize("thread_bytes", [0, 1 << 30])
async def test_rows_over_the_limit_are_413_and_at_it_are_served(
    aiohttp_client: MakeClient, tiny_plane: DataPlane, thread_bytes: int
) -> None:
    client = await client_for(
        aiohttp_client, tiny_plane, max_request_rows=100, decode_thread_bytes=thread_bytes
    )
    over = await client.post(INFER, data=rows_body(101), headers=JSON)
    assert "101 rows, over the limit of 100" in await error_of(over, 413)
    v1 = await client.post("/v1/models/tiny:predict", json={"instances": [[1, 2, 3, 4]] * 101})
    assert "over the limit" in await error_of(v1, 413)
    at = await client.post(INFER, data=rows_body(100), headers=JSON)
    assert at.status == 200
    assert (await at.json())["outputs"][1]["data"] == [4.0] * 100


async def test_no_rows_limit_when_it_is_zero(
    aiohttp_client: MakeClient, tiny_plane: DataPlane
) -> None:
    client = await client_for(aiohttp_client, tiny_plane, max_request_rows=0)
    assert (await client.post(INFER, data=rows_body(5000), headers=JSON)).status == 200


async def test_a_body_that_does_not_arrive_in_time_is_408(
    aiohttp_client: MakeClient, tiny_plane: DataPlane
) -> None:
    client = await client_for(aiohttp_client, tiny_plane, body_timeout_seconds=0.2)
    never = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield BODY[:10]
        await never.wait()  # the client stops sending, and never finishes

    response = await client.post(INFER, data=stalled(), headers=JSON)
    assert "did not arrive within 0.2 s" in await error_of(response, 408)
    assert response.headers.get("Connection") == "close"
    never.set()
    await served(client)
    metrics = await (await client.get("/metrics")).text()
    assert value(metrics, "modelyard_requests_total", code="408", protocol="rest") == 1


@pytest.mark.parametrize("header", ["Bearer \udcff\udcfe", "Bearer \ud800", "bearer \x00"])
def test_a_token_that_is_not_utf8_is_unauthorized(tiny_plane: DataPlane, header: str) -> None:
    tiny_plane.token = b"s3cret"
    with pytest.raises(UnauthorizedError, match="invalid bearer token"):
        tiny_plane.authorize(header)


async def test_framing_errors_are_answered_with_the_json_error_body(
    tiny_plane: DataPlane,
) -> None:
    runner = JsonErrorRunner(build_app(tiny_plane), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        for raw, message in [
            (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", "HTTPS traffic"),
            (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", "8190 bytes"),
            (b"POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n", "Content-Length"),
            (
                b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "chunk size",
            ),
        ]:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(raw)
            answer = await reader.read()
            writer.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b"\r\n")[0].endswith(b" 400 Bad Request")
            assert b"Content-Type: application/json" in head
            assert message in orjson.loads(body)["error"]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("thread_bytes", "process_bytes"), [(0, 0), (0, 1024)])
async def test_large_bodies_decode_off_the_loop_to_the_same_answers(
    aiohttp_client: MakeClient, tiny_plane: DataPlane, thread_bytes: int, process_bytes: int
) -> None:
    client = await client_for(
        aiohttp_client,
        tiny_plane,
        decode_thread_bytes=thread_bytes,
        decode_process_bytes=process_bytes,
    )
    v2 = await client.post(INFER, data=rows_body(300), headers=JSON)
    assert v2.status == 200
    assert (await v2.json())["outputs"][1]["data"] == [4.0] * 300
    v1 = await client.post("/v1/models/tiny:predict", json={"instances": [[1, 2, 3, 4]] * 300})
    expected = {"double": [2.0, 4.0, 6.0, 8.0], "total": 10.0}
    assert (await v1.json())["predictions"] == [expected] * 300
    bad = await client.post(INFER, data=rows_body(300).replace(b"1.0", b"null"), headers=JSON)
    assert "must be JSON numbers" in await error_of(bad, 400)


async def test_a_decoding_child_that_dies_is_a_503_and_the_next_one_works() -> None:
    settings = Settings(model_path="m.onnx", decode_thread_bytes=0, decode_process_bytes=1)
    decoder = BodyDecoder(settings)
    with pytest.raises(UnavailableError, match="decoding the request body failed"):
        await decoder.decode(sys.exit, b"the child exits without an answer")
    specs = {"x": TensorSpec("x", "FP32", (-1, 4))}
    decoded = await decoder.decode(oip.decode_infer, BODY, None, specs)
    assert decoded.feeds["x"].tolist() == [[1, 2, 3, 4]]

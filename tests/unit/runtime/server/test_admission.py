"""Admission over HTTP: a full queue answers 429 with Retry-After, a late result 504."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hack.testbed.metrics_text import value
from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.server.app import build_app
from modelyard_runtime.session.fake import FakeSession
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import LoadedModel
from tests.support.asyncwait import eventually

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
INFER = "/v2/models/gated/infer"


class Gate:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, feeds: Mapping[str, Array]) -> list[Array]:
        self.entered.set()
        assert self.release.wait(10)
        return [feeds["x"]]


@pytest.fixture
def gate() -> Gate:
    return Gate()


async def gated_plane(
    gate: Gate, tmp_path: Path, *, max_queue_size: int = 8, request_timeout_ms: int = 0
) -> DataPlane:
    settings = Settings(
        model_path=str(tmp_path / "gated.onnx"),
        max_batch_size=1,
        max_queue_size=max_queue_size,
        request_timeout_ms=request_timeout_ms,
    )
    spec = TensorSpec("x", "FP32", (-1, 4))
    session = FakeSession(gate, inputs=[spec], outputs=[spec])
    plane = DataPlane.for_settings(settings)
    plane.attach(LoadedModel(session=session, sha256="0" * 64))
    plane.readiness.not_ready_reason = ""
    return plane


@pytest.fixture
async def closing() -> AsyncIterator[list[DataPlane]]:
    planes: list[DataPlane] = []
    yield planes
    for plane in planes:
        assert plane.batcher is not None
        await plane.batcher.close()


async def test_full_queue_answers_429_with_retry_after(
    aiohttp_client: MakeClient, gate: Gate, tmp_path: Path, closing: list[DataPlane]
) -> None:
    plane = await gated_plane(gate, tmp_path, max_queue_size=1)
    closing.append(plane)
    client = await aiohttp_client(build_app(plane))
    first = asyncio.ensure_future(client.post(INFER, json=BODY))
    assert await asyncio.to_thread(gate.entered.wait, 5)
    queued = asyncio.ensure_future(client.post(INFER, json=BODY))
    batcher = plane.batcher
    assert batcher is not None
    await eventually(lambda: batcher.queued == 1, what="a queued request")
    rejected = await client.post(INFER, json=BODY)
    assert rejected.status == 429
    assert rejected.headers["Retry-After"] == "1"
    assert "queue" in (await rejected.json())["error"]
    gate.release.set()
    assert [(await r).status for r in (first, queued)] == [200, 200]
    text = await (await client.get("/metrics")).text()
    assert value(text, "modelyard_rejected_requests_total", reason="queue_full") == 1
    assert value(text, "modelyard_requests_total", code="429", protocol="rest") == 1


async def test_result_later_than_the_timeout_answers_504(
    aiohttp_client: MakeClient, gate: Gate, tmp_path: Path, closing: list[DataPlane]
) -> None:
    plane = await gated_plane(gate, tmp_path, request_timeout_ms=50)
    closing.append(plane)
    client = await aiohttp_client(build_app(plane))
    response = await client.post(INFER, json=BODY)
    assert response.status == 504
    assert "timeout" in (await response.json())["error"]
    gate.release.set()
    text = await (await client.get("/metrics")).text()
    assert value(text, "modelyard_rejected_requests_total", reason="timeout") == 1

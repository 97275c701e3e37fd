"""The data plane's one inference path, driven by a protocol it has never heard of.

``TextExchange`` is a whole transport adapter in a dozen lines: it decodes ``"1 2 3 4"`` into
feeds and encodes the outputs as text. Everything else (auth, model lookup, readiness, the
deadline, batching, accounting) is the data plane's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Mapping, Sequence

import numpy as np
import pytest

from hack.testbed.metrics_text import value
from modelyard_runtime.dataplane.model import ServedModel
from modelyard_runtime.dataplane.plane import DataPlane, Outputs
from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.errors import (
    InvalidInputError,
    NotFoundError,
    RequestTimeoutError,
    UnauthorizedError,
    UnavailableError,
)
from modelyard_runtime.session.fake import FakeSession
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import LoadedModel

X = TensorSpec("x", "FP32", (-1, 4))
OUTPUTS = [TensorSpec("double", "FP32", (-1, 4)), TensorSpec("total", "FP32", (-1,))]


@dataclasses.dataclass(frozen=True)
class TextRequest:
    feeds: dict[str, Array]
    output_names: Sequence[str] | None


@dataclasses.dataclass
class TextExchange:
    body: str
    wanted: tuple[str, ...] | None = None
    model_name: str = "m"
    model_version: str | None = None
    authorization: str | None = None
    deadline: float | None = None
    protocol: str = "text"

    async def decode(self, model: ServedModel) -> TextRequest:
        try:
            row = np.array([[float(v) for v in self.body.split()]], dtype=np.float32)
        except ValueError as e:
            raise InvalidInputError(f"not numbers: {self.body!r}") from e
        return TextRequest({"x": row}, self.wanted)

    def encode(self, model: ServedModel, request: TextRequest, outputs: Outputs) -> str:
        return "; ".join(f"{spec.name}={array.ravel().tolist()}" for spec, array in outputs)


class Gate:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()

    def __call__(self, feeds: Mapping[str, Array]) -> list[Array]:
        assert self.release.wait(10)
        x = feeds["x"]
        return [x * 2, x.sum(axis=1)]


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def plane(gate: Gate) -> AsyncIterator[DataPlane]:
    plane = DataPlane.for_settings(Settings(model_path="m.onnx", request_timeout_ms=0))
    session = FakeSession(gate, inputs=[X], outputs=OUTPUTS)
    plane.attach(LoadedModel(session=session, sha256="0" * 64))
    plane.readiness.not_ready_reason = ""
    yield plane
    assert plane.batcher is not None
    await plane.batcher.close()


def counted(plane: DataPlane, code: str) -> float:
    text = plane.metrics.exposition().decode()
    return value(text, "modelyard_requests_total", protocol="text", code=code)


async def test_a_new_protocol_is_a_decode_and_an_encode(plane: DataPlane) -> None:
    reply = await plane.infer(TextExchange("1 2 3 4", wanted=("total", "double")))
    assert reply == "total=[10.0]; double=[2.0, 4.0, 6.0, 8.0]"
    assert await plane.infer(TextExchange("0 0 0 1")) == "double=[0.0, 0.0, 0.0, 2.0]; total=[1.0]"
    assert counted(plane, "200") == 2
    assert plane.in_flight == 0
    assert plane.idle.is_set()


@pytest.mark.parametrize(
    ("exchange", "error", "code", "reason"),
    [
        (TextExchange("1 x"), InvalidInputError, "400", "bad_request"),
        (TextExchange("1 2 3 4", wanted=("nope",)), InvalidInputError, "400", "bad_request"),
        (TextExchange("1 2 3 4", model_name="other"), NotFoundError, "404", None),
        (TextExchange("1 2 3 4", model_version="9"), NotFoundError, "404", None),
    ],
)
async def test_errors_are_counted_then_raised(
    plane: DataPlane,
    exchange: TextExchange,
    error: type[Exception],
    code: str,
    reason: str | None,
) -> None:
    with pytest.raises(error):
        await plane.infer(exchange)
    assert counted(plane, code) == 1
    text = plane.metrics.exposition().decode()
    for known in ("bad_request", "unauthorized", "queue_full", "timeout", "too_large"):
        expected = 1 if known == reason else 0
        assert value(text, "modelyard_rejected_requests_total", reason=known) == expected
    assert plane.in_flight == 0


async def test_credentials_are_checked_before_anything_else(plane: DataPlane) -> None:
    plane.token = b"t0ken"
    with pytest.raises(UnauthorizedError, match="missing bearer token"):
        await plane.infer(TextExchange("1 x", model_name="other"))
    reply = await plane.infer(
        TextExchange("1 1 1 1", wanted=("total",), authorization="Bearer t0ken")
    )
    assert reply == "total=[4.0]"
    assert counted(plane, "401") == 1


async def test_draining_still_serves_but_not_ready_does_not(plane: DataPlane) -> None:
    plane.readiness.draining = True
    assert not plane.ready
    assert await plane.infer(TextExchange("1 1 1 1", wanted=("total",))) == "total=[4.0]"
    plane.readiness.not_ready_reason = "a GPU is required"
    with pytest.raises(UnavailableError, match="is not ready: a GPU is required"):
        await plane.infer(TextExchange("1 1 1 1"))
    assert counted(plane, "503") == 1


async def test_the_clients_deadline_bounds_the_wait(plane: DataPlane, gate: Gate) -> None:
    gate.release.clear()
    with pytest.raises(RequestTimeoutError, match=r"0\.05 s timeout"):
        await plane.infer(TextExchange("1 1 1 1", deadline=0.05))
    gate.release.set()
    assert counted(plane, "504") == 1
    assert await asyncio.wait_for(plane.drained(10), 10)

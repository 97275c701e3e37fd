"""Shared fixtures: test models, in-process data planes, and runtime server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from onnx import TensorProto

from hack.testbed import onnx_models
from hack.testbed.processes import RuntimeProcess
from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import prepare


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    elem = TensorProto
    return {
        "tiny": onnx_models.tiny_model(root / "tiny.onnx"),
        "fixed": onnx_models.fixed_model(root / "fixed.onnx"),
        "mlp": onnx_models.mlp_model(root / "mlp.onnx", (64, 128, 10)),
        "identity": onnx_models.identity_model(
            root / "identity.onnx",
            [elem.INT32, elem.BOOL, elem.FLOAT16, elem.DOUBLE, elem.STRING, elem.UINT8, elem.INT64],
        ),
    }


async def make_plane(settings: Settings) -> DataPlane:
    """A Ready data plane with the real onnxruntime session, as ``serve`` would build it."""
    plane = DataPlane.for_settings(settings)
    plane.attach(prepare(settings, plane.metrics))
    plane.readiness.not_ready_reason = ""
    return plane


@pytest.fixture
async def tiny_plane(models: dict[str, Path]) -> AsyncIterator[DataPlane]:
    plane = await make_plane(Settings(model_path=str(models["tiny"]), revision="r1"))
    yield plane
    assert plane.batcher is not None
    await plane.batcher.close()


@pytest.fixture
def runtime_process() -> Iterator[type[RuntimeProcess]]:
    """Yields the ``RuntimeProcess`` class; every process started through it is stopped after."""
    started: list[RuntimeProcess] = []

    class Tracked(RuntimeProcess):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for process in started:
        process.kill()

"""Protocol-neutral descriptions of the server and the served model.

Built once when the model is attached (``describe_model``); REST v2 renders them as JSON, gRPC as
protobuf messages and TF-Serving v1 as model status. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from modelyard_runtime import __version__
from modelyard_runtime.datatypes import TensorSpec

SERVER_NAME: Final = "modelyard"
# What the server implements beyond the core protocol (OIP server metadata ``extensions``).
EXTENSIONS: Final = ("binary_tensor_data", "model_configuration")
PLATFORM: Final = "onnxruntime_onnx"


@dataclasses.dataclass(frozen=True, slots=True)
class ServerMetadata:
    name: str = SERVER_NAME
    version: str = __version__
    extensions: tuple[str, ...] = EXTENSIONS


@dataclasses.dataclass(frozen=True, slots=True)
class ModelMetadata:
    """What model metadata reports, whatever the protocol."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    properties: Mapping[str, str | int]  # REST ``parameters``, gRPC ``properties``

    @property
    def batchable(self) -> bool:
        """True when every input and output has a dynamic first dimension."""
        return all(spec.batchable for spec in (*self.inputs, *self.outputs))


@dataclasses.dataclass(frozen=True, slots=True)
class ModelStatus:
    """The served model's state: loaded (or still loading), ready, and why not."""

    name: str
    version: str
    loaded: bool
    problem: str  # empty when ready

    @property
    def ready(self) -> bool:
        return not self.problem


def describe_model(
    *,
    name: str,
    version: str,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    execution_provider: str,
    sha256: str,
    opset: int,
) -> ModelMetadata:
    return ModelMetadata(
        name=name,
        versions=(version,),
        platform=PLATFORM,
        inputs=inputs,
        outputs=outputs,
        properties={"execution_provider": execution_provider, "sha256": sha256, "opset": opset},
    )

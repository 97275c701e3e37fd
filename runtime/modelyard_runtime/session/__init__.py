"""Model sessions: the seam between the server and an inference engine.

``ModelSession`` is what the batcher and the server call; ``session.onnx`` implements it with
onnxruntime (the only module that imports it) and ``session.fake`` with a Python function for tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from modelyard_runtime.datatypes import Array, TensorSpec, numpy_dtype

__all__ = ["Array", "DescribedSession", "ModelSession", "TensorSpec", "warmup_feeds"]


class ModelSession(Protocol):
    """A loaded model. ``run`` is thread-safe and may block: callers run it off the event loop."""

    @property
    def inputs(self) -> Sequence[TensorSpec]: ...

    @property
    def outputs(self) -> Sequence[TensorSpec]: ...

    @property
    def execution_provider(self) -> str:
        """The provider actually running the model: ``cpu``, ``cuda`` or ``tensorrt``."""
        ...

    @property
    def opset(self) -> int: ...

    def run(self, feeds: Mapping[str, Array]) -> list[Array]:
        """Run the model on ``feeds``; return every output, in ``outputs`` order."""
        ...


class DescribedSession:
    """The descriptive half of ``ModelSession``, shared by the implementations."""

    def __init__(
        self,
        *,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        execution_provider: str,
        opset: int,
    ) -> None:
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)
        self._provider = execution_provider
        self._opset = opset

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        return self._outputs

    @property
    def execution_provider(self) -> str:
        return self._provider

    @property
    def opset(self) -> int:
        return self._opset


def warmup_feeds(inputs: Sequence[TensorSpec], batch_size: int) -> dict[str, Array]:
    """Zero tensors for every input: a dynamic first dim becomes ``batch_size``, others 1."""
    feeds: dict[str, Array] = {}
    for spec in inputs:
        dims = [(batch_size if i == 0 else 1) if d == -1 else d for i, d in enumerate(spec.shape)]
        if spec.datatype == "BYTES":
            feeds[spec.name] = np.full(dims, "", dtype=np.object_)
        else:
            feeds[spec.name] = np.zeros(dims, dtype=numpy_dtype(spec.datatype))
    return feeds

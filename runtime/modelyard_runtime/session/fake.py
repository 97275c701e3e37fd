"""A ``ModelSession`` driven by a Python function, for tests that need control over timing.

``FakeSession(fn, inputs=..., outputs=...)`` calls ``fn(feeds)`` from the executor thread; a test
can block inside ``fn`` on a ``threading.Event`` to hold a batch in flight deterministically.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from modelyard_runtime.datatypes import Array, TensorSpec


class FakeSession:
    """Runs ``fn`` instead of a model and records the batch sizes it was given."""

    def __init__(
        self,
        fn: Callable[[Mapping[str, Array]], list[Array]],
        *,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        execution_provider: str = "cpu",
        opset: int = 17,
    ) -> None:
        self._fn = fn
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)
        self._provider = execution_provider
        self._opset = opset
        self._lock = threading.Lock()
        self.batch_sizes: list[int] = []

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

    def run(self, feeds: Mapping[str, Array]) -> list[Array]:
        first = next(iter(feeds.values()))
        with self._lock:
            self.batch_sizes.append(int(first.shape[0]) if first.ndim else 1)
        return self._fn(feeds)

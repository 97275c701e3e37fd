"""A ``ModelSession`` driven by a Python function, for tests that need control over timing.

``FakeSession(fn, inputs=..., outputs=...)`` calls ``fn(feeds)`` from the executor thread; a test
can block inside ``fn`` on a ``threading.Event`` to hold a batch in flight deterministically.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.session import DescribedSession


class FakeSession(DescribedSession):
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
        super().__init__(
            inputs=inputs, outputs=outputs, execution_provider=execution_provider, opset=opset
        )
        self._fn = fn
        self._lock = threading.Lock()
        self.batch_sizes: list[int] = []

    def run(self, feeds: Mapping[str, Array]) -> list[Array]:
        first = next(iter(feeds.values()))
        with self._lock:
            self.batch_sizes.append(int(first.shape[0]) if first.ndim else 1)
        return self._fn(feeds)

"""BentoML 1.4.39 service with adaptive batching (`bentoml serve bentoml_service:Mlp`)."""

from __future__ import annotations

import os

import bentoml
import numpy as np
from common import session


@bentoml.service(workers=1)
class Mlp:
    def __init__(self) -> None:
        self.sess = session(os.environ["BENCH_MODEL"])
        self.input = self.sess.get_inputs()[0].name

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {self.input: input.astype(np.float32)})[0]

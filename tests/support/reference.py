"""The ground truth for output checks: the model run directly with onnxruntime on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


def reference_output(model: Path, x: np.ndarray, input_name: str = "input") -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    result: np.ndarray = session.run(None, {input_name: x})[0]
    return result

"""The CUDA path: runs only where an NVIDIA GPU and onnxruntime's CUDA provider are present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from modelyard_runtime.session import onnx as onnx_session
from modelyard_runtime.session.providers import CUDA, gpu_present

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not gpu_present() or CUDA not in ort.get_available_providers(),
        reason="needs an NVIDIA GPU and onnxruntime-gpu's CUDA provider",
    ),
]


def test_auto_uses_cuda_and_matches_the_cpu(models: dict[str, Path]) -> None:
    gpu = onnx_session.load(models["mlp"], execution_provider="auto", intra_op_threads=0)
    cpu = onnx_session.load(models["mlp"], execution_provider="cpu", intra_op_threads=0)
    assert gpu.execution_provider == "cuda"
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    on_gpu = np.asarray(gpu.run({"input": x})[0], dtype=np.float32)
    on_cpu = np.asarray(cpu.run({"input": x})[0], dtype=np.float32)
    assert np.allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-4)

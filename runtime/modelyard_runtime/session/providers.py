"""Which onnxruntime execution providers to ask for, decided without touching CUDA noisily.

``plan_providers`` is pure (requested provider, GPU present?, providers the build has) -> the
provider chain. ``gpu_present`` (``contract.gpu``) asks the NVIDIA driver, so on a CPU-only host
``auto`` picks the CPU quietly instead of letting onnxruntime-gpu print a failed CUDA load.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from modelyard_runtime.contract.gpu import CPU, CUDA, SHORT_NAMES, TENSORRT, gpu_present

__all__ = [
    "CPU",
    "CUDA",
    "SHORT_NAMES",
    "TENSORRT",
    "ProviderPlan",
    "gpu_present",
    "plan_providers",
]

log = logging.getLogger(__name__)

# CUDA EP options (onnxruntime docs, CUDA-ExecutionProvider): grow the arena only as asked,
# search conv algorithms once per shape (warm-up runs every batch size before Ready).
CUDA_OPTIONS: dict[str, Any] = {
    "device_id": 0,
    "arena_extend_strategy": "kSameAsRequested",
    "cudnn_conv_algo_search": "EXHAUSTIVE",
    "do_copy_in_default_stream": True,
}


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderPlan:
    """The providers to pass to InferenceSession, and why the GPU is not among them if not."""

    providers: tuple[str, ...]
    note: str = ""

    def with_options(self, trt_cache_dir: str) -> list[str | tuple[str, dict[str, Any]]]:
        """The chain with each provider's options; TensorRT caches its engines in
        ``trt_cache_dir``, or nowhere when it is empty (an engine holds the model's weights, so a
        decrypted model's must not reach a disk)."""
        chain: list[str | tuple[str, dict[str, Any]]] = []
        for name in self.providers:
            if name == CUDA:
                chain.append((name, dict(CUDA_OPTIONS)))
            elif name == TENSORRT:
                cache = bool(trt_cache_dir)
                options: dict[str, Any] = {
                    "trt_engine_cache_enable": cache,
                    "trt_timing_cache_enable": cache,
                }
                if cache:
                    options["trt_engine_cache_path"] = trt_cache_dir
                chain.append((name, options))
            else:
                chain.append(name)
        return chain


def plan_providers(requested: str, *, gpu: bool, available: Sequence[str]) -> ProviderPlan:
    """The provider chain for ``requested`` (auto|cpu|cuda|tensorrt); CPU always ends it."""
    if requested == "cpu":
        return ProviderPlan((CPU,))
    wanted = {"auto": (CUDA,), "cuda": (CUDA,), "tensorrt": (TENSORRT, CUDA)}[requested]
    if not gpu:
        note = "" if requested == "auto" else f"{requested} requested but no NVIDIA GPU is visible"
        return ProviderPlan((CPU,), note)
    missing = [name for name in wanted if name not in available]
    if missing and requested != "auto":
        return ProviderPlan((CPU,), f"this onnxruntime build has no {', '.join(missing)}")
    chain = tuple(name for name in wanted if name in available)
    return ProviderPlan((*chain, CPU))

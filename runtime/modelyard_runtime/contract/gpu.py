"""onnxruntime's execution provider names, and whether an NVIDIA GPU is visible at all.

``gpu_present`` asks the NVIDIA driver through ctypes, so on a CPU-only host a caller can pick the
CPU quietly instead of letting onnxruntime-gpu print a failed CUDA load. Used by the runtime's
provider plan and by ``modelyard inspect``.
"""

from __future__ import annotations

import ctypes
from typing import Final

CPU: Final = "CPUExecutionProvider"
CUDA: Final = "CUDAExecutionProvider"
TENSORRT: Final = "TensorrtExecutionProvider"
SHORT_NAMES: Final = {CPU: "cpu", CUDA: "cuda", TENSORRT: "tensorrt"}
BY_SHORT_NAME: Final = {short: name for name, short in SHORT_NAMES.items()}


def gpu_present() -> bool:
    """True when the NVIDIA driver loads and reports at least one device."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    try:
        if libcuda.cuInit(0) != 0 or libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return False
    except AttributeError:
        return False
    return count.value > 0

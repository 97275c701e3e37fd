"""Tensor specs and datatype tables: OIP v2 names, numpy dtypes, ONNX Runtime type strings.

The bottom layer shared by the codecs (``protocol``), the sessions (``session``) and the batcher.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import numpy as np
import numpy.typing as npt

from modelyard_runtime.errors import InvalidInputError

Array = npt.NDArray[np.generic]


@dataclasses.dataclass(frozen=True, slots=True)
class TensorSpec:
    """One model input or output: name, OIP datatype, shape with -1 for dynamic dimensions."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def batchable(self) -> bool:
        """True when the first dimension is dynamic, so rows of several requests can be stacked."""
        return len(self.shape) >= 1 and self.shape[0] == -1


# OIP datatype -> numpy dtype. BYTES maps to object arrays (ONNX string tensors).
NUMPY_BY_DATATYPE: Final[dict[str, np.dtype[np.generic]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}

DATATYPE_BY_NUMPY: Final[dict[np.dtype[np.generic], str]] = {
    dtype: name for name, dtype in NUMPY_BY_DATATYPE.items()
}

# Datatypes the protocol names but this server cannot carry (numpy has no bfloat16).
KNOWN_UNSUPPORTED: Final[frozenset[str]] = frozenset({"BF16"})

# Datatypes JSON cannot represent: they need the binary extension (REST) or raw contents (gRPC).
BINARY_ONLY: Final[frozenset[str]] = frozenset({"FP16", "BF16"})

# onnxruntime's NodeArg.type strings -> OIP datatype.
DATATYPE_BY_ORT: Final[dict[str, str]] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
    "tensor(bfloat16)": "BF16",
}

ELEMENT_SIZE: Final[dict[str, int]] = {
    name: dtype.itemsize for name, dtype in NUMPY_BY_DATATYPE.items() if name != "BYTES"
}


def numpy_dtype(datatype: str) -> np.dtype[np.generic]:
    """The numpy dtype for an OIP datatype, or a 400 that names what is wrong."""
    try:
        return NUMPY_BY_DATATYPE[datatype]
    except KeyError:
        if datatype in KNOWN_UNSUPPORTED:
            raise InvalidInputError(
                f"datatype {datatype} is not supported by this server"
            ) from None
        raise InvalidInputError(f"unknown datatype {datatype!r}") from None


def triton_config_type(datatype: str) -> str:
    """Triton model-config type name: ``FP32`` -> ``TYPE_FP32``, ``BYTES`` -> ``TYPE_STRING``."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"

"""Reading an ONNX model with the onnx package: describe it, digest it, write its manifest.

``describe`` never loads external weights and never runs the model. ``ModelToolError`` carries a
message for people; the CLI prints it and exits non-zero (no traceback).
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Final

from modelyard_cli.errors import ModelToolError
from modelyard_runtime.contract.digest import sha256_file

__all__ = ["ModelToolError", "check_and_pin_ir", "describe", "load", "manifest", "need"]

ORT_MAX_IR: Final = 13  # the newest IR the pinned onnxruntime (1.31) reads; onnx 1.23 writes 14


def need(module: str, extra: str = "export") -> Any:
    """Import an optional dependency, or explain which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ModelToolError(
            f"{module} is not installed: pip install 'modelyard[{extra}]' ({e})"
        ) from e


def load(path: Path) -> Any:
    """The ``onnx.ModelProto`` at ``path``; a clear error for anything that is not ONNX."""
    onnx = need("onnx")
    if not path.is_file():
        raise ModelToolError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for garbage
        raise ModelToolError(f"{path} is not an ONNX model: {type(e).__name__}: {e}") from e
    if not model.graph.node and not model.graph.input:
        raise ModelToolError(f"{path} is not an ONNX model: it holds no graph")
    return model


def check_and_pin_ir(path: Path) -> None:
    """Lower the IR version to what onnxruntime reads, then run the full ONNX checker."""
    onnx = need("onnx")
    model = onnx.load(str(path))
    model.ir_version = min(model.ir_version, ORT_MAX_IR)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise ModelToolError(f"onnx.checker rejected {path}: {e}") from e
    onnx.save(model, str(path))


def _tensor(value: Any) -> dict[str, Any]:
    onnx = need("onnx")
    tensor = value.type.tensor_type
    dims: list[int | str] = []
    for dim in tensor.shape.dim:
        dims.append(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?"))
    return {
        "name": value.name,
        "datatype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
        "shape": dims,
    }


def describe(path: Path) -> dict[str, Any]:
    """Inputs, outputs, opsets, producer, size and operator counts of the model at ``path``."""
    model = load(path)
    initializers = {init.name for init in model.graph.initializer}
    operators = collections.Counter(
        f"{node.domain + '.' if node.domain else ''}{node.op_type}" for node in model.graph.node
    )
    return {
        "inputs": [_tensor(v) for v in model.graph.input if v.name not in initializers],
        "outputs": [_tensor(v) for v in model.graph.output],
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "size_bytes": path.stat().st_size,
        "operators": dict(sorted(operators.items())),
    }


def manifest(path: Path, *, name: str, version: str) -> dict[str, Any]:
    """What a ModelDeployment cites: name, version, sha256 and the model's interface."""
    info = describe(path)
    return {
        "name": name,
        "version": version,
        "file": path.name,
        "sha256": sha256_file(path),
        "size_bytes": info["size_bytes"],
        "inputs": info["inputs"],
        "outputs": info["outputs"],
        "opset": info["opsets"].get("ai.onnx", 0),
        "producer": info["producer"],
    }

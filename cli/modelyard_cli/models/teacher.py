"""The teacher of ``distill``: a PyTorch ``MODULE:FACTORY`` with its checkpoint (eval mode, no
gradients) or an ONNX file run with onnxruntime. Either gives its first output (the logits) as
float32, batch by batch, and an ONNX file to time and compare the student against.

``probe`` runs the teacher and the student on two rows before training, so a mismatch between
them, or with the data set's labels, is named before any training. An ONNX teacher also says
what inputs it takes (names, row shapes, dtypes), and so does a PyTorch teacher whose module
declares ``INPUTS`` (``export`` specs, as the examples do), so the data set can be checked
against them before anything runs.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from modelyard_cli.models import export
from modelyard_cli.models.dataset import DataSet, Expected
from modelyard_cli.models.measure import onnx_parameters
from modelyard_cli.models.onnx_model import ModelToolError, load

_ORT_TYPES: Final = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Teacher:
    """``run`` maps input arrays (in ``input_names`` order) to the first output."""

    source: str
    run: Callable[[Sequence[np.ndarray]], np.ndarray]
    module: Any  # the torch module, or None for an ONNX teacher
    onnx: Path | None  # the ONNX file of an ONNX teacher
    expected: list[Expected] | None  # what an ONNX teacher, or the module's INPUTS, declare
    output_names: list[str]

    def parameters(self, exported: Path) -> int:
        if self.module is not None:
            return sum(int(p.numel()) for p in self.module.parameters())
        return onnx_parameters(exported)


def is_onnx(source: str) -> bool:
    return source.endswith(".onnx") or Path(source).is_file()


def load_teacher(source: str, checkpoint: Path | None, *, threads: int) -> Teacher:
    if not is_onnx(source):
        module = export.build_module(source, checkpoint)

        def run_module(feeds: Sequence[np.ndarray]) -> np.ndarray:
            return export.run_torch(module, feeds)[0].astype(np.float32)

        return Teacher(source, run_module, module, None, declared_inputs(source), [])
    if checkpoint is not None:
        raise ModelToolError(
            f"--teacher-checkpoint is for a PyTorch teacher; {source} is an ONNX file, which "
            "holds its own weights"
        )
    path = Path(source)
    load(path)  # a clear error for a missing file or anything that is not ONNX
    session = export.ort_session(path, threads)
    expected = [_expected(path, i) for i in session.get_inputs()]
    names = [i.name for i in session.get_inputs()]

    def run_session(feeds: Sequence[np.ndarray]) -> np.ndarray:
        first = session.run(None, dict(zip(names, feeds, strict=True)))[0]
        return np.asarray(first, dtype=np.float32)

    outputs = [o.name for o in session.get_outputs()]
    return Teacher(source, run_session, None, path, expected, outputs)


def declared_inputs(target: str) -> list[Expected] | None:
    """The ``INPUTS`` of the factory's module (``("features:1x16",)``), if it declares them."""
    declared = getattr(sys.modules.get(target.partition(":")[0]), "INPUTS", None)
    if not isinstance(declared, tuple | list) or not all(isinstance(d, str) for d in declared):
        return None
    try:
        specs = [export.InputSpec.parse(text, i) for i, text in enumerate(declared)]
    except ModelToolError as e:
        raise ModelToolError(f"{target}: the module's INPUTS are not input specs: {e}") from e
    return [Expected.from_spec(s) for s in specs] or None


def _expected(path: Path, value: Any) -> Expected:
    dtype = _ORT_TYPES.get(value.type)
    if dtype is None:
        raise ModelToolError(f"{path}: input {value.name!r} has type {value.type}, which "
                             f"distill cannot feed ({', '.join(_ORT_TYPES)})")  # fmt: skip
    if not value.shape or (isinstance(value.shape[0], int) and value.shape[0] != 0):
        raise ModelToolError(
            f"{path}: input {value.name!r} has shape {value.shape}, with no dynamic batch axis "
            "first; export the teacher with one (modelyard export does)"
        )
    row = tuple(d if isinstance(d, int) and d > 0 else None for d in value.shape[1:])
    return Expected(value.name, row, dtype)


def probe(teacher: Teacher, student: Any, data: DataSet) -> np.ndarray:
    """Both models on the first two rows of ``data``: the teacher's logits, or a named error
    (a model that rejects the inputs, a student whose output shape is not the teacher's,
    outputs that are not logits, labels that do not fit them)."""
    feeds = [v[:2] for v in data.inputs.values()]
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in zip(data.inputs, feeds, strict=True))
    try:
        logits = teacher.run(feeds)
    except Exception as e:
        raise ModelToolError(f"the teacher rejected the data set's inputs ({shapes}): "
                             f"{type(e).__name__}: {e}") from e  # fmt: skip
    try:
        mine = export.run_torch(student, feeds)[0]
    except Exception as e:
        raise ModelToolError(f"the student rejected the data set's inputs ({shapes}): "
                             f"{type(e).__name__}: {e}") from e  # fmt: skip
    if tuple(mine.shape) != tuple(logits.shape):
        raise ModelToolError(
            f"the student's output has shape {tuple(mine.shape)} but the teacher's has "
            f"{tuple(logits.shape)} for inputs {shapes}: a student must predict the same "
            "classes (or vocabulary) in the same shape"
        )
    if logits.ndim < 2 or logits.shape[-1] < 2:
        raise ModelToolError(
            f"the teacher's output has shape {tuple(logits.shape)}: distillation needs logits "
            "with the classes (at least two) on the last axis"
        )
    labels = data.labels
    if labels is not None:
        if tuple(labels.shape[1:]) != tuple(logits.shape[1:-1]):
            raise ModelToolError(
                f"labels have rows of shape {tuple(labels.shape[1:])}, but the teacher's logits "
                f"{tuple(logits.shape)} need one label per {tuple(logits.shape[1:-1]) or 'row'}"
            )
        if labels.min() < 0 or labels.max() >= logits.shape[-1]:
            raise ModelToolError(
                f"labels run from {labels.min()} to {labels.max()}, but the teacher has "
                f"{logits.shape[-1]} classes (0 to {logits.shape[-1] - 1})"
            )
    return logits

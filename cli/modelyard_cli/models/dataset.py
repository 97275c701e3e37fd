"""The data set ``distill`` trains on and ``factorize`` measures on: an ``.npz`` with one array
per model input (rows first) and, optionally, an array of integer labels.

Everything that can be checked without running a model is checked here, and each failure names
the file, the array and what was expected: a missing array, rows of the wrong shape or kind of
dtype, inputs whose row counts differ, labels that are not integers or not one per row. Pure
apart from reading the file; no torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import numpy as np

from modelyard_cli.models.export import InputSpec
from modelyard_cli.models.onnx_model import ModelToolError

LABELS: Final = "labels"
_KINDS: Final = {"f": "floating-point", "i": "integer", "u": "integer", "b": "boolean"}


@dataclasses.dataclass(frozen=True, slots=True)
class Expected:
    """What the model takes for one input: a name, the shape of one row (None: any size), a
    dtype. The row shape leaves out the batch axis."""

    name: str
    row: tuple[int | None, ...]
    dtype: str

    @classmethod
    def from_spec(cls, spec: InputSpec) -> Expected:
        return cls(spec.name, tuple(spec.shape[1:]), spec.dtype)


@dataclasses.dataclass(frozen=True, slots=True)
class DataSet:
    """Input arrays in the model's input order (cast to its dtypes), and labels if any."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None

    @property
    def rows(self) -> int:
        return len(next(iter(self.inputs.values())))

    def take(self, index: np.ndarray) -> DataSet:
        labels = self.labels[index] if self.labels is not None else None
        return DataSet({k: v[index] for k, v in self.inputs.items()}, labels)

    def specs(self) -> list[InputSpec]:
        """Export specs with the data's own row shapes."""
        return [InputSpec(k, (1, *v.shape[1:]), v.dtype.name) for k, v in self.inputs.items()]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array in the file, in the order it was saved."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: np.asarray(data[name]) for name in data.files}
    except Exception as e:
        raise ModelToolError(f"cannot read data set {path}: {type(e).__name__}: {e}") from e


def expected_from_arrays(
    path: Path, arrays: Mapping[str, np.ndarray], labels: str
) -> list[Expected]:
    """With no other source, every array but the labels is an input, in the file's order;
    float64 arrays are taken as float32 (numpy's default dtype is not what models take)."""
    expected = []
    for name, array in arrays.items():
        if name == labels:
            continue
        if array.dtype.kind not in _KINDS:
            raise ModelToolError(f"{path}: array {name!r} holds {array.dtype.name} values, "
                                 "not numbers a model takes")  # fmt: skip
        dtype = "float32" if array.dtype == np.float64 else array.dtype.name
        expected.append(Expected(name, tuple(array.shape[1:]), dtype))
    return expected


def load_data_set(
    path: Path, expected: Sequence[Expected] | None, *, labels: str | None
) -> DataSet:
    """The data set at ``path``, checked against ``expected`` (None: taken from the file).

    ``labels`` None means "the array named ``labels`` if there is one"; a name given by the user
    must be there.
    """
    arrays = read_npz(path)
    key = labels or LABELS
    if labels is not None and labels not in arrays:
        raise ModelToolError(f"{path} has no labels array {labels!r} (it holds {_names(arrays)})")
    wanted = list(expected) if expected is not None else expected_from_arrays(path, arrays, key)
    if not wanted:
        raise ModelToolError(f"{path} holds no input arrays (it holds {_names(arrays)})")
    missing = [e.name for e in wanted if e.name not in arrays]
    if missing:
        raise ModelToolError(
            f"{path} has no array for input(s) {missing} (it holds {_names(arrays)})"
        )
    inputs = {e.name: _checked(path, arrays[e.name], e) for e in wanted}
    rows = {name: len(a) for name, a in inputs.items()}
    if len(set(rows.values())) > 1:
        raise ModelToolError(f"{path}: the input arrays have different numbers of rows: {rows}")
    if min(rows.values()) == 0:
        raise ModelToolError(f"{path}: the data set has no rows")
    found = arrays.get(key)
    if found is not None:
        whole = found.dtype.kind == "f" and bool(np.all(np.mod(found, 1) == 0))
        if found.dtype.kind not in "iu" and not whole:
            raise ModelToolError(
                f"{path}: labels {key!r} must be integer class indices, not {found.dtype.name} "
                "values with fractions"
            )
        if found.ndim == 0 or len(found) != min(rows.values()):
            raise ModelToolError(
                f"{path}: labels {key!r} have {found.shape[0] if found.ndim else 0} rows, "
                f"the inputs {min(rows.values())}: one label (or row of labels) per input row"
            )
        found = found.astype(np.int64)
    return DataSet(inputs, found)


def _checked(path: Path, array: np.ndarray, expected: Expected) -> np.ndarray:
    want = np.dtype(expected.dtype)
    if array.dtype.kind not in _KINDS or _KINDS[array.dtype.kind] != _KINDS.get(want.kind):
        raise ModelToolError(
            f"{path}: array {expected.name!r} holds {array.dtype.name} values, but input "
            f"{expected.name!r} takes {want.name} ({_KINDS.get(want.kind, want.name)})"
        )
    row = array.shape[1:]
    fits = len(row) == len(expected.row) and all(
        e is None or e == got for e, got in zip(expected.row, row, strict=True)
    )
    if array.ndim == 0 or not fits:
        shown = "x".join("?" if d is None else str(d) for d in expected.row) or "a scalar"
        raise ModelToolError(
            f"{path}: array {expected.name!r} has shape {tuple(array.shape)}, but input "
            f"{expected.name!r} takes rows of shape {shown} (rows first: N x {shown})"
        )
    return array.astype(want, copy=False)


def split(data: DataSet, holdout: float, seed: int) -> tuple[DataSet, DataSet]:
    """(train, evaluation): the evaluation rows are the first ``ceil(holdout * rows)`` of
    ``numpy.random.default_rng(seed).permutation(rows)``, the rest train."""
    if not 0 < holdout < 1:
        raise ModelToolError(f"--holdout must be between 0 and 1 (exclusive), got {holdout}")
    held = math.ceil(holdout * data.rows)
    if held >= data.rows:
        raise ModelToolError(
            f"--holdout {holdout} of {data.rows} rows leaves nothing to train on: give more "
            "rows or --eval-data"
        )
    order = np.random.default_rng(seed).permutation(data.rows)
    return data.take(order[held:]), data.take(order[:held])


def _names(arrays: Mapping[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items()) or "no arrays"

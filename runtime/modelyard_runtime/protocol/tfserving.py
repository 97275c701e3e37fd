"""TF-Serving REST v1 ``:predict``: the row (``instances``) and column (``inputs``) formats.

Values take the model input's datatype (TF-Serving infers it; we know it from the graph);
``{"b64": ...}`` carries bytes. Replies use ``predictions`` for row requests and ``outputs`` for
column requests; a single-output model's reply drops the output name, as TF-Serving does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.protocol import tensors


@dataclasses.dataclass(frozen=True, slots=True)
class PredictRequest:
    feeds: dict[str, Array]
    row_format: bool

    @property
    def output_names(self) -> None:
        """TF-Serving always answers with every output."""
        return None


def _unwrap_b64(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise InvalidInputError('a binary value must be {"b64": "<base64 string>"}')
        try:
            return base64.b64decode(value["b64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise InvalidInputError(f"b64 value is not valid base64 UTF-8: {e}") from e
    if isinstance(value, list):
        return [_unwrap_b64(item) for item in value]
    return value


def _tensor(spec: TensorSpec, value: Any) -> Array:
    if spec.datatype == "BYTES":
        value = _unwrap_b64(value)
    array = tensors.array_from_values(spec.name, spec.datatype, value)
    tensors.check_against_spec(spec, spec.datatype, array.shape)
    return array


def decode_predict(body: bytes, specs: Mapping[str, TensorSpec]) -> PredictRequest:
    request = tensors.json_object(body)
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances == has_inputs:
        raise InvalidInputError('give exactly one of "instances" (row) or "inputs" (column)')
    if has_instances:
        feeds = _from_instances(request["instances"], specs)
    else:
        feeds = _from_inputs(request["inputs"], specs)
    tensors.check_complete(feeds, specs)
    return PredictRequest(feeds=feeds, row_format=has_instances)


def _from_instances(instances: Any, specs: Mapping[str, TensorSpec]) -> dict[str, Array]:
    if not isinstance(instances, list) or not instances:
        raise InvalidInputError("instances must be a non-empty list")
    named = all(isinstance(row, dict) and "b64" not in row for row in instances)
    if not named:
        if len(specs) != 1:
            raise InvalidInputError(
                "this model has several inputs: each instance must be an object "
                "naming them: " + ", ".join(sorted(specs))
            )
        (spec,) = specs.values()
        return {spec.name: _tensor(spec, instances)}
    columns: dict[str, list[Any]] = {}
    for row in instances:
        if set(row) != set(columns or row):
            raise InvalidInputError("every instance must name the same inputs")
        for name, value in row.items():
            columns.setdefault(name, []).append(value)
    return {
        name: _tensor(tensors.spec_for(name, specs), values) for name, values in columns.items()
    }


def _from_inputs(inputs: Any, specs: Mapping[str, TensorSpec]) -> dict[str, Array]:
    if isinstance(inputs, dict) and "b64" not in inputs:
        return {
            name: _tensor(tensors.spec_for(name, specs), value) for name, value in inputs.items()
        }
    if len(specs) != 1:
        raise InvalidInputError(
            "this model has several inputs: inputs must be an object naming them: "
            + ", ".join(sorted(specs))
        )
    (spec,) = specs.values()
    return {spec.name: _tensor(spec, inputs)}


def _jsonable(array: Array) -> Any:
    if array.ndim == 0:
        item = array.item()
        return item.decode("utf-8", "replace") if isinstance(item, bytes) else item
    if array.dtype == np.object_:
        return np.vectorize(
            lambda item: item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item),
            otypes=[object],
        )(array).tolist()
    return np.ascontiguousarray(array)


def encode_predict(
    request: PredictRequest, specs: Sequence[TensorSpec], outputs: Sequence[Array]
) -> bytes:
    option = orjson.OPT_SERIALIZE_NUMPY
    if request.row_format:
        if len(outputs) == 1:
            return orjson.dumps({"predictions": _jsonable(outputs[0])}, option=option)
        rows = [
            {
                spec.name: _jsonable(np.asarray(array[i]))
                for spec, array in zip(specs, outputs, strict=True)
            }
            for i in range(len(outputs[0]))
        ]
        return orjson.dumps({"predictions": rows}, option=option)
    if len(outputs) == 1:
        return orjson.dumps({"outputs": _jsonable(outputs[0])}, option=option)
    named = {spec.name: _jsonable(array) for spec, array in zip(specs, outputs, strict=True)}
    return orjson.dumps({"outputs": named}, option=option)

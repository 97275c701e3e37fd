"""OIP v2 over gRPC: ModelInferRequest <-> checked feeds; ModelInferResponse with raw outputs.

Decodes both typed ``contents`` and ``raw_input_contents`` through the same checks as REST
(``protocol.tensors``), so a bad input gets the same message on both transports. Responses always
use ``raw_output_contents``, as Triton does. Pure: called by ``server.grpc_v2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from modelyard_runtime.datatypes import BINARY_ONLY, Array, TensorSpec, numpy_dtype
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.protocol import tensors
from modelyard_runtime.protocol.oip import InferRequest, RequestedOutput
from modelyard_runtime.protocol.pb import inference_pb2 as pb

# Which typed-contents field carries each datatype.
CONTENTS_FIELD: Final[dict[str, str]] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _typed(name: str, datatype: str, shape: Sequence[int], contents: Any) -> Array:
    if datatype in BINARY_ONLY:
        raise InvalidInputError(f"input {name!r}: {datatype} must be sent as raw_input_contents")
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInputError(f"input {name!r}: unknown datatype {datatype!r}")
    values = getattr(contents, field)
    if datatype == "BYTES":
        try:
            items = [value.decode("utf-8") for value in values]
        except UnicodeDecodeError as e:
            raise InvalidInputError(f"input {name!r}: BYTES element is not UTF-8") from e
        return tensors.reshape(name, np.array(items, dtype=np.object_), shape)
    try:  # the field's type is wider than INT8..INT16, UINT8..UINT16: numpy checks the range
        array = np.array(values, dtype=numpy_dtype(datatype))
    except OverflowError as e:
        raise InvalidInputError(f"input {name!r}: data does not fit {datatype}: {e}") from e
    return tensors.reshape(name, array, shape)


def typed_bytes(request: pb.ModelInferRequest) -> int:
    """About how many bytes the typed ``contents`` of ``request`` take as Python values (8 each),
    cheaply: whether to decode it off the event loop. Raw contents decode without a copy."""
    size = 0
    for tensor in request.inputs:
        for _, values in tensor.contents.ListFields():
            size += 8 * len(values)
    return size


def decode_model_infer(
    request: pb.ModelInferRequest, specs: Mapping[str, TensorSpec]
) -> InferRequest:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInputError(
            f"raw_input_contents has {len(raw)} buffers for {len(request.inputs)} inputs"
        )
    if not request.inputs:
        raise InvalidInputError("inputs must not be empty")
    feeds: dict[str, Array] = {}
    for index, tensor in enumerate(request.inputs):
        name = tensor.name
        _, shape = tensors.check_input(name, tensor.datatype, list(tensor.shape), specs)
        if name in feeds:
            raise InvalidInputError(f"input {name!r} is given twice")
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInputError(
                    f"input {name!r} has typed contents while raw_input_contents is used"
                )
            feeds[name] = tensors.array_from_bytes(name, tensor.datatype, shape, raw[index])
        else:
            feeds[name] = _typed(name, tensor.datatype, shape, tensor.contents)
    tensors.check_complete(feeds, specs)
    outputs = tuple(RequestedOutput(o.name, True) for o in request.outputs) or None
    return InferRequest(id=request.id or None, feeds=feeds, outputs=outputs, binary_output=True)


def encode_model_infer(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[tuple[TensorSpec, Array]],
) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request_id or ""
    )
    for spec, array in outputs:
        response.outputs.add(name=spec.name, datatype=spec.datatype, shape=array.shape)
        response.raw_output_contents.append(tensors.array_to_bytes(array))
    return response

"""Open Inference Protocol v2 over REST: JSON tensors and Triton's binary-tensor extension.

``decode_infer`` turns a request body (and its ``Inference-Header-Content-Length``) into checked
numpy feeds; ``encode_infer`` turns outputs into a JSON or binary response body. Called by the
REST v2 transport (``server.rest_v2``) and, for the request type, the gRPC codec; knows nothing
of HTTP beyond the header value it is handed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from modelyard_runtime.datatypes import ELEMENT_SIZE, Array, TensorSpec
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.protocol import tensors


@dataclasses.dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool | None  # None: the request-level default decides


@dataclasses.dataclass(frozen=True, slots=True)
class InferRequest:
    """A decoded, checked inference request."""

    id: str | None
    feeds: dict[str, Array]
    outputs: tuple[RequestedOutput, ...] | None  # None: every output
    binary_output: bool  # request-level binary_data_output
    raw: bool = False  # raw binary request (header length 0): every output comes back binary

    @property
    def output_names(self) -> tuple[str, ...] | None:
        """The outputs asked for, in order; None: every output."""
        if self.outputs is None:
            return None
        return tuple(wanted.name for wanted in self.outputs)

    def wants_binary(self, position: int) -> bool:
        """Whether the ``position``-th output of the reply goes as a binary tensor."""
        if self.outputs is None:
            return self.binary_output
        binary = self.outputs[position].binary
        return self.binary_output if binary is None else binary


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedResponse:
    body: bytes
    header_length: int | None  # set when the body carries binary tensors
    content_type: str


def _parameters(owner: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{owner}: parameters must be a JSON object")
    return raw


def decode_infer(
    body: bytes, header_length: int | None, specs: Mapping[str, TensorSpec]
) -> InferRequest:
    """Decode and check a v2 infer request against the model's input ``specs``."""
    if header_length == 0:
        return _decode_raw(body, specs)
    if header_length is None:
        header, binary = tensors.json_object(body), memoryview(b"")
    else:
        if header_length < 0 or header_length > len(body):
            raise InvalidInputError(
                f"Inference-Header-Content-Length {header_length} does not fit a "
                f"{len(body)}-byte body"
            )
        view = memoryview(body)
        header, binary = tensors.json_object(view[:header_length]), view[header_length:]
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError("id must be a string")
    raw_inputs = header.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInputError("inputs must be a non-empty list")
    feeds: dict[str, Array] = {}
    offset = 0
    for raw in raw_inputs:
        name, array, used = _decode_input(raw, binary, offset, specs)
        if name in feeds:
            raise InvalidInputError(f"input {name!r} is given twice")
        feeds[name] = array
        offset += used
    if offset != len(binary):
        raise InvalidInputError(
            f"the body has {len(binary) - offset} bytes of binary data that no input claims"
        )
    tensors.check_complete(feeds, specs)
    parameters = _parameters("request", header.get("parameters"))
    return InferRequest(
        id=request_id,
        feeds=feeds,
        outputs=_decode_outputs(header.get("outputs")),
        binary_output=parameters.get("binary_data_output") is True,
    )


def _decode_input(
    raw: Any, binary: memoryview, offset: int, specs: Mapping[str, TensorSpec]
) -> tuple[str, Array, int]:
    if not isinstance(raw, dict):
        raise InvalidInputError("each input must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str):
        raise InvalidInputError("each input needs a string name")
    datatype, shape = tensors.check_input(name, raw.get("datatype"), raw.get("shape"), specs)
    size = _parameters(f"input {name!r}", raw.get("parameters")).get("binary_data_size")
    if size is None:
        if "data" not in raw:
            raise InvalidInputError(f"input {name!r} has neither data nor binary_data_size")
        return name, tensors.array_from_json(name, datatype, shape, raw["data"]), 0
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(f"input {name!r}: binary_data_size must be a non-negative integer")
    if "data" in raw:
        raise InvalidInputError(f"input {name!r} has both data and binary_data_size")
    if offset + size > len(binary):
        raise InvalidInputError(
            f"input {name!r}: binary_data_size {size} is larger than the "
            f"{len(binary) - offset} bytes of binary data left in the body"
        )
    chunk = binary[offset : offset + size]
    return name, tensors.array_from_bytes(name, datatype, shape, chunk), size


def _decode_raw(body: bytes, specs: Mapping[str, TensorSpec]) -> InferRequest:
    """Raw binary request: the body is the one input's tensor, batch 1 (Triton's definition)."""
    if len(specs) != 1:
        raise InvalidInputError("a raw binary request needs a model with exactly one input")
    (spec,) = specs.values()
    variable = [i for i, d in enumerate(spec.shape) if d == -1]
    if len(variable) > 1 or spec.datatype == "BYTES":
        raise InvalidInputError(
            "a raw binary request needs an input with at most one variable dimension"
        )
    dims = [1 if d == -1 else d for d in spec.shape]
    if variable and variable[0] != 0:
        row_bytes = max(1, math.prod(dims)) * ELEMENT_SIZE[spec.datatype]
        dims[variable[0]] = len(body) // row_bytes
    array = tensors.array_from_bytes(spec.name, spec.datatype, dims, body)
    return InferRequest(
        id=None, feeds={spec.name: array}, outputs=None, binary_output=True, raw=True
    )


def _decode_outputs(raw: Any) -> tuple[RequestedOutput, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidInputError("outputs must be a list")
    requested = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInputError("each requested output needs a string name")
        binary = _parameters(f"output {item['name']!r}", item.get("parameters")).get("binary_data")
        requested.append(
            RequestedOutput(item["name"], binary if isinstance(binary, bool) else None)
        )
    return tuple(requested)


def encode_infer(
    *,
    model_name: str,
    model_version: str,
    request: InferRequest,
    outputs: Sequence[tuple[TensorSpec, Array, bool]],
) -> EncodedResponse:
    """Encode ``(spec, array, binary?)`` outputs; binary ones follow the JSON header."""
    if request.raw:
        array = outputs[0][1]
        return EncodedResponse(tensors.array_to_bytes(array), 0, "application/octet-stream")
    chunks: list[bytes] = []
    described = []
    for spec, array, binary in outputs:
        entry: dict[str, Any] = {
            "name": spec.name,
            "datatype": spec.datatype,
            "shape": list(array.shape),
        }
        if binary:
            chunk = tensors.array_to_bytes(array)
            chunks.append(chunk)
            entry["parameters"] = {"binary_data_size": len(chunk)}
        else:
            entry["data"] = tensors.json_data(array)
        described.append(entry)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        response["id"] = request.id
    response["outputs"] = described
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return EncodedResponse(header, None, "application/json")
    return EncodedResponse(b"".join([header, *chunks]), len(header), "application/octet-stream")


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})

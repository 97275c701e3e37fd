"""Checks a decoded tensor against the model's input spec and builds arrays from wire data.

Shared by every codec (OIP JSON/binary, TF-Serving v1, gRPC) so a bad input gets the same
message whatever the protocol.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from modelyard_runtime.datatypes import BINARY_ONLY, ELEMENT_SIZE, Array, TensorSpec, numpy_dtype
from modelyard_runtime.errors import InvalidInputError

_LENGTH = struct.Struct("<I")


def json_object(data: bytes | memoryview) -> dict[str, Any]:
    """Parse a request body that must be a JSON object."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InvalidInputError(f"request body is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidInputError("request body must be a JSON object")
    return value


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def parse_shape(name: str, raw: Any) -> tuple[int, ...]:
    if isinstance(raw, list):
        for d in raw:  # a loop, not all(...): this runs on every request
            if type(d) is not int or d < 0:
                break
        else:
            return tuple(raw)
    raise InvalidInputError(f"input {name!r}: shape must be a list of non-negative integers")


def spec_for(name: str, specs: Mapping[str, TensorSpec]) -> TensorSpec:
    try:
        return specs[name]
    except KeyError:
        known = ", ".join(sorted(specs))
        raise InvalidInputError(
            f"unknown input {name!r}; the model's inputs are: {known}"
        ) from None


def check_against_spec(spec: TensorSpec, datatype: str, shape: Sequence[int]) -> None:
    """The request's datatype and shape must fit the model's input."""
    if datatype != spec.datatype:
        raise InvalidInputError(
            f"input {spec.name!r} has datatype {datatype} but the model expects {spec.datatype}"
        )
    fits = len(shape) == len(spec.shape)
    if fits:
        for want, got in zip(spec.shape, shape, strict=True):
            if want != -1 and want != got:
                fits = False
                break
    if not fits:
        raise InvalidInputError(
            f"input {spec.name!r} has shape {shape_text(shape)} but the model expects "
            f"{shape_text(spec.shape)} (-1 = any size)"
        )


def check_input(
    name: str, datatype: Any, raw_shape: Any, specs: Mapping[str, TensorSpec]
) -> tuple[str, tuple[int, ...]]:
    """The checks every protocol makes on an input's header; returns its datatype and shape."""
    spec = spec_for(name, specs)
    if not isinstance(datatype, str):
        raise InvalidInputError(f"input {name!r} needs a string datatype")
    shape = parse_shape(name, raw_shape)
    check_against_spec(spec, datatype, shape)
    return datatype, shape


def check_complete(feeds: Mapping[str, Array], specs: Mapping[str, TensorSpec]) -> None:
    missing = sorted(set(specs) - set(feeds))
    if missing:
        raise InvalidInputError(f"missing input(s): {', '.join(missing)}")


def array_from_json(name: str, datatype: str, shape: Sequence[int], data: Any) -> Array:
    """Build the array for JSON ``data`` (flat or nested, row-major) of ``shape``."""
    if datatype in BINARY_ONLY:
        raise InvalidInputError(
            f"input {name!r}: {datatype} cannot be sent as JSON data; "
            "use the binary tensor extension (binary_data_size)"
        )
    if not isinstance(data, list):
        data = [data]
    return reshape(name, array_from_values(name, datatype, data), shape)


def array_from_values(name: str, datatype: str, values: Any) -> Array:
    """The array of JSON ``values`` (nested lists) as ``datatype``, exactly or a 400.

    Numeric datatypes take JSON numbers only (never null, strings or booleans), and every value
    must fit: an integer datatype takes integers in its range (a float with no fraction too),
    a float datatype values within its range. BOOL takes true/false; BYTES strings.
    """
    dtype = numpy_dtype(datatype)
    try:
        if datatype == "BYTES":
            array = np.array(values, dtype=np.object_)
            if not all(isinstance(item, str) for item in array.flat):
                raise InvalidInputError(f"input {name!r}: BYTES data must be strings")
            return array
        array = np.array(values)
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        raise InvalidInputError(f"input {name!r}: data does not fit {datatype}: {e}") from e
    kind = array.dtype.kind
    if datatype == "BOOL":
        if array.size and kind != "b":
            raise InvalidInputError(f"input {name!r}: BOOL data must be true or false")
        return array.astype(np.bool_, copy=False)
    if array.size and kind not in _NUMBER_KINDS:
        raise InvalidInputError(
            f"input {name!r}: data does not fit {datatype}: values must be JSON numbers "
            "(not null, strings, booleans or objects)"
        )
    if array.dtype == dtype:
        return array
    if dtype.kind == "f":
        return _to_float(name, datatype, array, dtype)
    return _to_integer(name, datatype, array, dtype, values)


_NUMBER_KINDS = frozenset("iuf")
_EXACT_FLOAT_INTEGER = 2**53  # integers up to this are exact in a float64


def _does_not_fit(name: str, datatype: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"input {name!r}: data does not fit {datatype}: {why}")


def _to_float(name: str, datatype: str, array: Array, dtype: np.dtype[np.generic]) -> Array:
    if array.dtype.kind != "f" and dtype.itemsize >= 4:  # no 64-bit integer overflows an FP32
        return array.astype(dtype)
    try:
        with np.errstate(over="raise", invalid="raise"):
            return array.astype(dtype)
    except FloatingPointError as e:
        raise _does_not_fit(name, datatype, "a value is out of range") from e


def _to_integer(
    name: str, datatype: str, array: Array, dtype: np.dtype[np.generic], values: Any
) -> Array:
    if not array.size:
        return array.astype(dtype)
    if array.dtype.kind == "f":
        if not bool(np.all(np.floor(array) == array)):
            raise _does_not_fit(name, datatype, "values must be integers")
        if float(np.abs(array).max()) >= _EXACT_FLOAT_INTEGER:
            # numpy made float64s of integers past int64 beside others (2**63 and 0), or of
            # large integers beside fractions: only the JSON values themselves are exact.
            return _exact_integers(name, datatype, values, dtype)
        low, high = int(array.min()), int(array.max())
    else:
        low, high = int(array.min()), int(array.max())
    info = np.iinfo(dtype)  # type: ignore[type-var]
    if low < info.min or high > info.max:
        raise _does_not_fit(name, datatype, "a value is out of range")
    return array.astype(dtype)


def _exact_integers(name: str, datatype: str, values: Any, dtype: np.dtype[np.generic]) -> Array:
    items = np.array(values, dtype=np.object_)
    exact = []
    item: Any
    for item in items.ravel().tolist():
        if type(item) is float and item.is_integer() and abs(item) <= _EXACT_FLOAT_INTEGER:
            item = int(item)
        if type(item) is not int:
            raise _does_not_fit(name, datatype, "values must be exact integers")
        exact.append(item)
    try:
        return np.array(exact, dtype=dtype).reshape(items.shape)
    except OverflowError as e:
        raise _does_not_fit(name, datatype, "a value is out of range") from e


def reshape(name: str, array: Array, shape: Sequence[int]) -> Array:
    expected = math.prod(shape)
    if array.size != expected:
        raise InvalidInputError(
            f"input {name!r} has {array.size} elements but shape {shape_text(shape)} "
            f"needs {expected}"
        )
    return array.reshape(shape)


def array_from_bytes(
    name: str, datatype: str, shape: Sequence[int], raw: bytes | memoryview
) -> Array:
    """Build the array for a binary tensor (little-endian, row-major; BYTES length-prefixed)."""
    if datatype == "BYTES":
        return reshape(name, np.array(_split_bytes(name, raw), dtype=np.object_), shape)
    dtype = numpy_dtype(datatype)
    expected = math.prod(shape) * ELEMENT_SIZE[datatype]
    if len(raw) != expected:
        raise InvalidInputError(
            f"input {name!r}: {len(raw)} bytes of {datatype} data but shape "
            f"{shape_text(shape)} needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)


def _split_bytes(name: str, raw: bytes | memoryview) -> list[str]:
    items: list[str] = []
    view = memoryview(raw)
    pos = 0
    while pos < len(view):
        if pos + 4 > len(view):
            raise InvalidInputError(f"input {name!r}: truncated BYTES element length")
        (length,) = _LENGTH.unpack_from(view, pos)
        pos += 4
        if pos + length > len(view):
            raise InvalidInputError(f"input {name!r}: BYTES element runs past the tensor")
        try:
            items.append(bytes(view[pos : pos + length]).decode("utf-8"))
        except UnicodeDecodeError as e:
            raise InvalidInputError(f"input {name!r}: BYTES element is not UTF-8") from e
        pos += length
    return items


def array_to_bytes(array: Array) -> bytes:
    """The binary-extension encoding of ``array``."""
    if array.dtype == np.object_:
        parts = []
        for item in array.flat:
            data = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def json_data(array: Array) -> Any:
    """Flat row-major data for a JSON response (orjson serialises numpy arrays natively)."""
    if array.dtype == np.object_:
        return [
            item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
            for item in array.flat
        ]
    return np.ascontiguousarray(array).reshape(-1)

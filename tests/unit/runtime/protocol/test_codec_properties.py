"""Every codec, any input: it decodes to exactly the tensor it describes, or raises the runtime's
``InvalidInputError`` (a 400), never anything else (hypothesis).

Two kinds of property per codec: a valid tensor of any datatype and shape round-trips exactly;
and hostile input (any JSON where a value belongs, any bytes, any protobuf fields) is either
refused with ``InvalidInputError`` or decodes to arrays whose datatype and shape the model
declares and whose values are the request's values.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import zlib
from typing import Any, Literal

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelyard_runtime.datatypes import NUMPY_BY_DATATYPE, Array, TensorSpec
from modelyard_runtime.errors import InvalidInputError, PayloadTooLargeError
from modelyard_runtime.protocol import content_coding, grpc_codec, oip, tensors, tfserving
from modelyard_runtime.protocol.pb import inference_pb2 as pb

pytestmark = pytest.mark.filterwarnings("error")

PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_DATATYPES = sorted(set(NUMPY_BY_DATATYPE) - {"FP16"})  # FP16 is binary-only in v2 JSON
ALL_DATATYPES = sorted(NUMPY_BY_DATATYPE)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


def elements(datatype: str) -> st.SearchStrategy[Any]:
    dtype = NUMPY_BY_DATATYPE[datatype]
    if datatype == "BYTES":
        return st.text(max_size=6)
    if dtype.kind == "f":
        width: Literal[16, 32, 64] = (
            16 if dtype.itemsize == 2 else 32 if dtype.itemsize == 4 else 64
        )
        return st.floats(width=width, allow_nan=False, allow_infinity=False)
    return hnp.from_dtype(dtype)


@st.composite
def tensors_of(draw: st.DrawFn, datatypes: list[str]) -> tuple[str, Array]:
    datatype = draw(st.sampled_from(datatypes))
    shape = draw(SHAPES)
    values = draw(
        st.lists(elements(datatype), min_size=math.prod(shape), max_size=math.prod(shape))
    )
    dtype = NUMPY_BY_DATATYPE[datatype]
    array = np.array(values, dtype=dtype).reshape(shape)
    return datatype, array


def dynamic_spec(datatype: str, ndim: int) -> dict[str, TensorSpec]:
    return {"t": TensorSpec("t", datatype, (-1,) * ndim)}


def assert_same(decoded: Array, expected: Array) -> None:
    assert decoded.dtype == expected.dtype
    assert decoded.shape == expected.shape
    assert decoded.tolist() == expected.tolist()


def flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for part in value for item in flat(part)]
    return [value]


def assert_describes(datatype: str, array: Array, data: Any) -> None:
    """A decoded array holds exactly the JSON values it was sent, in the declared datatype."""
    assert array.dtype == NUMPY_BY_DATATYPE[datatype]
    values = flat(data)
    assert len(values) == array.size
    for got, sent in zip(array.ravel().tolist(), values, strict=True):
        if datatype == "BYTES":
            assert got == sent
        elif datatype == "BOOL":
            assert type(sent) is bool
            assert got == sent
        elif array.dtype.kind == "f":
            assert isinstance(sent, int | float)
            assert got == float(array.dtype.type(sent))
        else:
            assert isinstance(sent, int | float)
            assert got == sent


# -- OIP v2 JSON ---------------------------------------------------------------------------


@PROPERTIES
@given(tensors_of(JSON_DATATYPES), st.booleans())
def test_v2_json_tensors_round_trip_exactly(tensor: tuple[str, Array], nested: bool) -> None:
    datatype, array = tensor
    data = array.tolist() if nested else array.ravel().tolist()
    body = orjson.dumps(
        {"inputs": [{"name": "t", "shape": list(array.shape), "datatype": datatype, "data": data}]}
    )
    decoded = oip.decode_infer(body, None, dynamic_spec(datatype, array.ndim))
    assert_same(decoded.feeds["t"], array)


@PROPERTIES
@given(st.sampled_from(ALL_DATATYPES), st.lists(st.integers(-1, 5), max_size=3), JSON_VALUES)
def test_v2_json_any_data_decodes_exactly_or_is_a_400(
    datatype: str, shape: list[int], data: Any
) -> None:
    body = orjson.dumps(
        {"inputs": [{"name": "t", "shape": shape, "datatype": datatype, "data": data}]}
    )
    try:
        decoded = oip.decode_infer(body, None, dynamic_spec(datatype, len(shape)))
    except InvalidInputError:
        return
    array = decoded.feeds["t"]
    assert array.shape == tuple(shape)
    assert_describes(datatype, array, data if isinstance(data, list) else [data])


@PROPERTIES
@given(st.binary(max_size=200), st.one_of(st.none(), st.integers(-5, 250)))
def test_v2_any_body_decodes_or_is_a_400(body: bytes, header_length: int | None) -> None:
    specs = dynamic_spec("FP32", 2)
    try:
        decoded = oip.decode_infer(body, header_length, specs)
    except InvalidInputError:
        return
    assert decoded.feeds["t"].dtype == np.float32


@PROPERTIES
@given(JSON_VALUES)
def test_v2_any_json_header_decodes_or_is_a_400(header: Any) -> None:
    with contextlib.suppress(InvalidInputError):
        oip.decode_infer(orjson.dumps({"inputs": header}), None, dynamic_spec("INT32", 1))


# -- OIP v2 binary tensors ---------------------------------------------------------------


@PROPERTIES
@given(tensors_of(ALL_DATATYPES))
def test_v2_binary_tensors_round_trip_exactly(tensor: tuple[str, Array]) -> None:
    datatype, array = tensor
    chunk = tensors.array_to_bytes(array)
    header = orjson.dumps(
        {"inputs": [{"name": "t", "shape": list(array.shape), "datatype": datatype,
                     "parameters": {"binary_data_size": len(chunk)}}]}
    )  # fmt: skip
    decoded = oip.decode_infer(header + chunk, len(header), dynamic_spec(datatype, array.ndim))
    assert_same(decoded.feeds["t"], array)


@PROPERTIES
@given(
    st.sampled_from(ALL_DATATYPES),
    st.lists(st.integers(-1, 6), max_size=3),
    st.one_of(st.none(), st.integers(-3, 80), st.text(max_size=2)),
    st.binary(max_size=80),
)
def test_v2_binary_any_chunk_decodes_exactly_or_is_a_400(
    datatype: str, shape: list[int], size: Any, chunk: bytes
) -> None:
    header = orjson.dumps(
        {"inputs": [{"name": "t", "shape": shape, "datatype": datatype,
                     "parameters": {"binary_data_size": size}}]}
    )  # fmt: skip
    try:
        decoded = oip.decode_infer(header + chunk, len(header), dynamic_spec(datatype, len(shape)))
    except InvalidInputError:
        return
    array = decoded.feeds["t"]
    assert array.shape == tuple(shape)
    assert tensors.array_to_bytes(array) == chunk  # the bytes sent, nothing more or less


# -- OIP v2 gRPC ---------------------------------------------------------------------------


@PROPERTIES
@given(tensors_of(ALL_DATATYPES), st.booleans())
def test_grpc_tensors_round_trip_exactly(tensor: tuple[str, Array], raw: bool) -> None:
    datatype, array = tensor
    request = pb.ModelInferRequest(model_name="m")
    entry = request.inputs.add(name="t", datatype=datatype, shape=list(array.shape))
    if raw or datatype == "FP16":
        request.raw_input_contents.append(tensors.array_to_bytes(array))
    elif datatype == "BYTES":
        entry.contents.bytes_contents.extend(s.encode() for s in array.ravel().tolist())
    else:
        getattr(entry.contents, grpc_codec.CONTENTS_FIELD[datatype]).extend(array.ravel().tolist())
    decoded = grpc_codec.decode_model_infer(request, dynamic_spec(datatype, array.ndim))
    assert_same(decoded.feeds["t"], array)


@st.composite
def model_infer_requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="m")
    for _ in range(draw(st.integers(0, 2))):
        entry = request.inputs.add(
            name=draw(st.sampled_from(["t", "u", ""])),
            datatype=draw(st.sampled_from([*ALL_DATATYPES, "BF16", "nope"])),
            shape=draw(st.lists(st.integers(-2, 5), max_size=3)),
        )
        contents = entry.contents
        for field in draw(
            st.lists(st.sampled_from(sorted(set(grpc_codec.CONTENTS_FIELD.values()))), max_size=2)
        ):
            if field == "bytes_contents":
                contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=4), max_size=6)))
            elif field == "bool_contents":
                contents.bool_contents.extend(draw(st.lists(st.booleans(), max_size=6)))
            elif field in ("fp32_contents", "fp64_contents"):
                values = st.floats(width=32 if field == "fp32_contents" else 64)
                getattr(contents, field).extend(draw(st.lists(values, max_size=6)))
            else:
                bits = 64 if "64" in field else 32
                low = 0 if field.startswith("uint") else -(2 ** (bits - 1))
                high = 2**bits - 1 if field.startswith("uint") else 2 ** (bits - 1) - 1
                getattr(contents, field).extend(draw(st.lists(st.integers(low, high), max_size=6)))
    for _ in range(draw(st.integers(0, 2))):
        request.raw_input_contents.append(draw(st.binary(max_size=40)))
    return request


@PROPERTIES
@given(model_infer_requests(), st.sampled_from(ALL_DATATYPES))
def test_grpc_any_request_decodes_exactly_or_is_a_400(
    request: pb.ModelInferRequest, datatype: str
) -> None:
    specs = {"t": TensorSpec("t", datatype, (-1, -1))}
    try:
        decoded = grpc_codec.decode_model_infer(request, specs)
    except InvalidInputError:
        return
    (entry,) = request.inputs
    array = decoded.feeds["t"]
    assert array.dtype == NUMPY_BY_DATATYPE[datatype]
    assert array.shape == tuple(entry.shape)
    if request.raw_input_contents:
        assert tensors.array_to_bytes(array) == request.raw_input_contents[0]
    elif datatype == "BYTES":
        assert [s.encode() for s in array.ravel().tolist()] == list(entry.contents.bytes_contents)
    else:
        sent = list(getattr(entry.contents, grpc_codec.CONTENTS_FIELD[datatype]))
        assert array.ravel().tolist() == sent


# -- TF-Serving v1 -------------------------------------------------------------------------


@PROPERTIES
@given(tensors_of(ALL_DATATYPES), st.booleans())
def test_v1_tensors_round_trip_exactly(tensor: tuple[str, Array], rows: bool) -> None:
    datatype, array = tensor
    assume(0 not in array.shape)  # nested JSON lists cannot say how long an empty dimension is
    values = array.tolist()
    if datatype == "BYTES":
        values = np.vectorize(lambda s: s, otypes=[object])(array).tolist()
    key = "instances" if rows else "inputs"
    spec = dynamic_spec(datatype, array.ndim)
    decoded = tfserving.decode_predict(orjson.dumps({key: values}), spec)
    if datatype == "FP16":
        expected = np.array(array.tolist(), dtype=np.float16)
        assert_same(decoded.feeds["t"], expected)
    else:
        assert_same(decoded.feeds["t"], array)


@PROPERTIES
@given(st.sampled_from(ALL_DATATYPES), st.sampled_from(["instances", "inputs"]), JSON_VALUES)
def test_v1_any_json_decodes_exactly_or_is_a_400(datatype: str, key: str, value: Any) -> None:
    spec = {"t": TensorSpec("t", datatype, (-1, -1))}
    try:
        decoded = tfserving.decode_predict(orjson.dumps({key: value}), spec)
    except InvalidInputError:
        return
    array = decoded.feeds["t"]
    assert array.ndim == 2
    if datatype == "BYTES":
        assert array.dtype == np.object_
    elif datatype != "FP16":
        assert_describes(datatype, array, value)


# -- Content-Encoding ----------------------------------------------------------------------


@PROPERTIES
@given(st.binary(max_size=3000), st.sampled_from(["gzip", "deflate"]), st.integers(1, 700))
def test_compressed_bodies_inflate_exactly_in_any_steps(data: bytes, name: str, step: int) -> None:
    packed = gzip.compress(data) if name == "gzip" else zlib.compress(data)
    inflater = content_coding.Inflater(name, packed, limit=4096)
    while not inflater.done:
        inflater.step(step)
    assert inflater.result() == data


@PROPERTIES
@given(st.binary(max_size=300), st.sampled_from(["gzip", "deflate"]))
def test_any_compressed_body_inflates_or_is_a_400_or_413(data: bytes, name: str) -> None:
    inflater = content_coding.Inflater(name, data, limit=1024)
    try:
        inflater.step()
    except (InvalidInputError, PayloadTooLargeError):
        return
    assert len(inflater.result()) <= 1024


def test_a_bomb_stops_one_byte_past_the_limit() -> None:
    bomb = gzip.compress(bytes(50_000_000))
    inflater = content_coding.Inflater("gzip", bomb, limit=1 << 20)
    with pytest.raises(PayloadTooLargeError, match="inflates to more than"):
        inflater.step()

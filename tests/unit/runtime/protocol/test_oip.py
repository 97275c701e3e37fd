"""OIP v2 codec: JSON and binary tensors decode to checked arrays and encode back."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from modelyard_runtime.datatypes import TensorSpec
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.protocol import oip

SPECS = {"x": TensorSpec("x", "FP32", (-1, 4))}
OUTPUTS = [TensorSpec("double", "FP32", (-1, 4)), TensorSpec("total", "FP32", (-1,))]


def body(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def x_input(**overrides: Any) -> dict[str, Any]:
    return {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": list(range(8)), **overrides}


def binary_body(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, int]:
    head = orjson.dumps(header)
    return head + b"".join(chunks), len(head)


def test_json_flat_and_nested_data_decode_to_the_same_array() -> None:
    flat = oip.decode_infer(body([x_input()]), None, SPECS)
    nested = oip.decode_infer(body([x_input(data=[[0, 1, 2, 3], [4, 5, 6, 7]])]), None, SPECS)
    assert flat.feeds["x"].dtype == np.float32
    np.testing.assert_array_equal(flat.feeds["x"], nested.feeds["x"])
    assert flat.feeds["x"].shape == (2, 4)


def test_id_outputs_and_binary_flags_are_kept() -> None:
    request = oip.decode_infer(
        body(
            [x_input()],
            id="req-1",
            outputs=[{"name": "total", "parameters": {"binary_data": True}}, {"name": "double"}],
            parameters={"binary_data_output": False},
        ),
        None,
        SPECS,
    )
    assert request.id == "req-1"
    assert request.output_names == ("total", "double")
    assert [request.wants_binary(position) for position in range(2)] == [True, False]


def test_binary_input_decodes_without_copy_semantics_changing_values() -> None:
    data = np.arange(8, dtype=np.float32)
    raw, length = binary_body(
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                     "parameters": {"binary_data_size": 32}}]},
        data.tobytes(),
    )  # fmt: skip
    request = oip.decode_infer(raw, length, SPECS)
    np.testing.assert_array_equal(request.feeds["x"], data.reshape(2, 4))


def test_bytes_binary_elements_are_length_prefixed() -> None:
    specs = {"t": TensorSpec("t", "BYTES", (-1,))}
    chunk = b"".join(struct.pack("<I", len(s)) + s for s in (b"ab", b"", b"\xc3\xa9"))
    raw, length = binary_body(
        {"inputs": [{"name": "t", "shape": [3], "datatype": "BYTES",
                     "parameters": {"binary_data_size": len(chunk)}}]},
        chunk,
    )  # fmt: skip
    assert oip.decode_infer(raw, length, specs).feeds["t"].tolist() == ["ab", "", "é"]


def test_raw_binary_request_is_batch_one_and_answers_binary() -> None:
    data = np.arange(4, dtype=np.float32)
    request = oip.decode_infer(data.tobytes(), 0, SPECS)
    assert request.raw
    assert request.feeds["x"].shape == (1, 4)
    encoded = oip.encode_infer(
        model_name="m", model_version="1", request=request,
        outputs=[(OUTPUTS[0], data.reshape(1, 4) * 2, True)],
    )  # fmt: skip
    assert encoded.header_length == 0
    assert np.frombuffer(encoded.body, np.float32).tolist() == [0, 2, 4, 6]


def test_encode_mixes_json_and_binary_outputs() -> None:
    request = oip.decode_infer(body([x_input()], id="7"), None, SPECS)
    double = np.arange(8, dtype=np.float32).reshape(2, 4)
    total = np.array([6.0, 22.0], dtype=np.float32)
    encoded = oip.encode_infer(
        model_name="m", model_version="1", request=request,
        outputs=[(OUTPUTS[0], double, False), (OUTPUTS[1], total, True)],
    )  # fmt: skip
    assert encoded.header_length is not None
    header = orjson.loads(encoded.body[: encoded.header_length])
    assert header["id"] == "7"
    assert header["outputs"][0]["data"] == list(range(8))
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 8}
    tail = encoded.body[encoded.header_length :]
    assert np.frombuffer(tail, np.float32).tolist() == [6.0, 22.0]


def test_json_only_response_has_no_header_length() -> None:
    request = oip.decode_infer(body([x_input()]), None, SPECS)
    encoded = oip.encode_infer(
        model_name="m", model_version="1", request=request,
        outputs=[(OUTPUTS[1], np.array([1.0, 2.0], np.float32), False)],
    )  # fmt: skip
    assert encoded.header_length is None
    assert encoded.content_type == "application/json"
    assert "id" not in orjson.loads(encoded.body)


@pytest.mark.parametrize(
    ("raw", "header_length", "message"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (body([]), None, "inputs must be a non-empty list"),
        (body([x_input(name="y")]), None, "unknown input 'y'"),
        (body([x_input(shape=[2, 3], data=list(range(6)))]), None, r"model expects \[-1,4\]"),
        (body([x_input(data=[1, 2, 3])]), None, "has 3 elements but shape"),
        (body([x_input(datatype="FP64")]), None, "datatype FP64 but the model expects FP32"),
        (body([x_input(datatype="BF16")]), None, "datatype BF16"),
        (body([x_input(data=["a"] * 8)]), None, "does not fit FP32"),
        (body([x_input(shape=[2, -4])]), None, "non-negative integers"),
        (body([x_input(), x_input()]), None, "given twice"),
        (body([{"name": "x", "shape": [2, 4], "datatype": "FP32"}]), None, "neither data"),
        (body([x_input()], outputs="all"), None, "outputs must be a list"),
        (body([x_input()], id=5), None, "id must be a string"),
        (b"{}", 100, "does not fit a 2-byte body"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    raw: bytes, header_length: int | None, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        oip.decode_infer(raw, header_length, SPECS)


def test_missing_input_is_named() -> None:
    specs = {**SPECS, "mask": TensorSpec("mask", "BOOL", (-1, 4))}
    with pytest.raises(InvalidInputError, match=r"missing input.*mask"):
        oip.decode_infer(body([x_input()]), None, specs)


def test_fp16_in_json_points_to_the_binary_extension() -> None:
    specs = {"h": TensorSpec("h", "FP16", (-1,))}
    raw = body([{"name": "h", "shape": [1], "datatype": "FP16", "data": [1.0]}])
    with pytest.raises(InvalidInputError, match="binary tensor extension"):
        oip.decode_infer(raw, None, specs)


def test_binary_size_larger_than_the_body_is_rejected() -> None:
    raw, length = binary_body(
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                     "parameters": {"binary_data_size": 64}}]},
        bytes(32),
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="larger than the 32 bytes"):
        oip.decode_infer(raw, length, SPECS)


def test_binary_size_not_matching_the_shape_is_rejected() -> None:
    raw, length = binary_body(
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                     "parameters": {"binary_data_size": 16}}]},
        bytes(16),
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="16 bytes of FP32 data"):
        oip.decode_infer(raw, length, SPECS)


def test_unclaimed_binary_bytes_are_rejected() -> None:
    raw, length = binary_body({"inputs": [x_input()]}, b"extra")
    with pytest.raises(InvalidInputError, match="5 bytes of binary data that no input claims"):
        oip.decode_infer(raw, length, SPECS)


def test_without_requested_outputs_the_request_level_flag_decides() -> None:
    request = oip.decode_infer(
        body([x_input()], parameters={"binary_data_output": True}), None, SPECS
    )
    assert request.output_names is None
    assert request.wants_binary(0)
    assert request.wants_binary(1)

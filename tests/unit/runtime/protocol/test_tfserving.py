"""TF-Serving v1 codec: row and column formats, b64 values, replies without names."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from modelyard_runtime.datatypes import TensorSpec
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.protocol import tfserving

ONE = {"x": TensorSpec("x", "FP32", (-1, 2))}
TWO = {"a": TensorSpec("a", "INT64", (-1,)), "b": TensorSpec("b", "FP32", (-1, 2))}
OUT_ONE = [TensorSpec("y", "FP32", (-1, 2))]
OUT_TWO = [TensorSpec("y", "FP32", (-1, 2)), TensorSpec("z", "INT64", (-1,))]


def test_instances_of_a_single_input_model() -> None:
    request = tfserving.decode_predict(b'{"instances": [[1, 2], [3, 4]]}', ONE)
    assert request.row_format
    assert request.feeds["x"].dtype == np.float32
    assert request.feeds["x"].tolist() == [[1, 2], [3, 4]]
    reply = tfserving.encode_predict(request, OUT_ONE, [request.feeds["x"] * 2])
    assert orjson.loads(reply) == {"predictions": [[2, 4], [6, 8]]}


def test_named_instances_and_multi_output_rows() -> None:
    raw = b'{"instances": [{"a": 1, "b": [1, 2]}, {"a": 2, "b": [3, 4]}]}'
    request = tfserving.decode_predict(raw, TWO)
    assert request.feeds["a"].tolist() == [1, 2]
    reply = tfserving.encode_predict(request, OUT_TWO, [request.feeds["b"], request.feeds["a"]])
    assert orjson.loads(reply) == {"predictions": [{"y": [1, 2], "z": 1}, {"y": [3, 4], "z": 2}]}


def test_column_inputs_answer_outputs() -> None:
    request = tfserving.decode_predict(b'{"inputs": {"a": [5], "b": [[1, 2]]}}', TWO)
    assert not request.row_format
    reply = tfserving.encode_predict(request, OUT_TWO, [request.feeds["b"], request.feeds["a"]])
    assert orjson.loads(reply) == {"outputs": {"y": [[1, 2]], "z": [5]}}


def test_b64_values_feed_string_inputs() -> None:
    specs = {"t": TensorSpec("t", "BYTES", (-1,))}
    encoded = base64.b64encode("héllo".encode()).decode()
    raw = orjson.dumps({"instances": [{"b64": encoded}, "plain"]})
    assert tfserving.decode_predict(raw, specs).feeds["t"].tolist() == ["héllo", "plain"]


@pytest.mark.parametrize(
    ("raw", "specs", "message"),
    [
        (b'{"instances": [[1, 2]], "inputs": [[1, 2]]}', ONE, "exactly one of"),
        (b"{}", ONE, "exactly one of"),
        (b'{"instances": []}', ONE, "non-empty list"),
        (b'{"instances": [[1, 2, 3]]}', ONE, "model expects"),
        (b'{"instances": [["a", "b"]]}', ONE, "not fit FP32"),
        (b'{"instances": [[1, 2]]}', TWO, "several inputs"),
        (b'{"instances": [{"a": 1, "b": [1, 2]}, {"a": 2}]}', TWO, "same inputs"),
        (b'{"inputs": {"a": [1]}}', TWO, "missing input"),
        (b'{"inputs": {"c": [1]}}', TWO, "unknown input 'c'"),
        (b"nope", ONE, "not valid JSON"),
    ],
)
def test_bad_predict_requests(raw: bytes, specs: dict[str, TensorSpec], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        tfserving.decode_predict(raw, specs)

"""gRPC codec: typed and raw contents decode through the same checks as REST."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard_runtime.datatypes import TensorSpec
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.protocol import grpc_codec
from modelyard_runtime.protocol.pb import inference_pb2 as pb

SPECS = {"x": TensorSpec("x", "FP32", (-1, 2)), "t": TensorSpec("t", "BYTES", (-1,))}


def request(**fields: object) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m", id="7")
    x = message.inputs.add(name="x", datatype="FP32", shape=[2, 2])
    t = message.inputs.add(name="t", datatype="BYTES", shape=[2])
    if fields.get("raw"):
        message.raw_input_contents.append(np.arange(4, dtype=np.float32).tobytes())
        message.raw_input_contents.append(b"\x01\x00\x00\x00a\x02\x00\x00\x00bc")
    else:
        x.contents.fp32_contents.extend([0, 1, 2, 3])
        t.contents.bytes_contents.extend([b"a", b"bc"])
    return message


@pytest.mark.parametrize("raw", [False, True])
def test_typed_and_raw_contents_decode_alike(raw: bool) -> None:
    decoded = grpc_codec.decode_model_infer(request(raw=raw), SPECS)
    assert decoded.id == "7"
    assert decoded.feeds["x"].tolist() == [[0, 1], [2, 3]]
    assert decoded.feeds["t"].tolist() == ["a", "bc"]
    assert decoded.outputs is None


def test_response_carries_raw_outputs_in_order() -> None:
    out = np.array([[1.5, 2.5]], dtype=np.float32)
    response = grpc_codec.encode_model_infer(
        model_name="m", model_version="1", request_id="7", outputs=[(SPECS["x"], out)]
    )
    assert response.id == "7"
    assert list(response.outputs[0].shape) == [1, 2]
    assert np.frombuffer(response.raw_output_contents[0], np.float32).tolist() == [1.5, 2.5]


def test_raw_buffer_count_must_match_inputs() -> None:
    message = request(raw=True)
    del message.raw_input_contents[1]
    with pytest.raises(InvalidInputError, match="1 buffers for 2 inputs"):
        grpc_codec.decode_model_infer(message, SPECS)


def test_fp16_must_be_raw() -> None:
    specs = {"h": TensorSpec("h", "FP16", (-1,))}
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="h", datatype="FP16", shape=[1]).contents.fp32_contents.append(1)
    with pytest.raises(InvalidInputError, match="raw_input_contents"):
        grpc_codec.decode_model_infer(message, specs)


def test_typed_contents_with_wrong_count_name_the_shape() -> None:
    message = request()
    message.inputs[0].contents.fp32_contents.append(9)
    with pytest.raises(InvalidInputError, match=r"has 5 elements but shape \[2,2\]"):
        grpc_codec.decode_model_infer(message, SPECS)


def test_no_inputs_is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="inputs must not be empty"):
        grpc_codec.decode_model_infer(pb.ModelInferRequest(model_name="m"), SPECS)

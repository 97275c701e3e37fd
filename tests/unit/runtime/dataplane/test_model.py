"""The served model: outputs picked by name in the order asked, metadata built once."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from modelyard_runtime.dataplane.model import ServedModel
from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.errors import InvalidInputError
from modelyard_runtime.session.fake import FakeSession

X = TensorSpec("x", "FP32", (-1, 4))
OUTPUTS = [TensorSpec("double", "FP32", (-1, 4)), TensorSpec("total", "FP32", (-1,))]


def unused(feeds: Mapping[str, Array]) -> list[Array]:
    raise AssertionError("the model is not run here")


@pytest.fixture
def model() -> ServedModel:
    session = FakeSession(unused, inputs=[X], outputs=OUTPUTS, opset=19)
    return ServedModel.of(name="m", version="v2", session=session, sha256="a" * 64)


def test_outputs_are_selected_in_the_order_asked(model: ServedModel) -> None:
    assert list(model.select_outputs(("total", "double"))) == [1, 0]
    assert list(model.select_outputs(None)) == [0, 1]


def test_unknown_output_is_named(model: ServedModel) -> None:
    with pytest.raises(InvalidInputError, match="unknown output 'nope'; the model's outputs"):
        model.select_outputs(("double", "nope"))


def test_metadata_describes_the_graph_for_every_protocol(model: ServedModel) -> None:
    meta = model.metadata
    assert (meta.name, meta.versions, meta.platform) == ("m", ("v2",), "onnxruntime_onnx")
    assert meta.inputs == (X,)
    assert meta.outputs == tuple(OUTPUTS)
    assert meta.properties == {"execution_provider": "cpu", "sha256": "a" * 64, "opset": 19}
    assert meta.batchable
    assert model.inputs == {"x": X}

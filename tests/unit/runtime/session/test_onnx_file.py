"""The ONNX header reader gets ir_version and opsets without the onnx package."""

from __future__ import annotations

from pathlib import Path

import pytest

from hack.testbed import onnx_models
from modelyard_runtime.session import onnx_file


def test_reads_ir_version_producer_and_opset(models: dict[str, Path]) -> None:
    header = onnx_file.read_header(models["tiny"])
    assert header.ir_version == onnx_models.IR_VERSION
    assert header.default_opset == onnx_models.OPSET
    assert header.producer_name == "modelyard-tests"


@pytest.mark.parametrize(
    "content", [b"", b"not an onnx model at all", b"\x08", bytes(range(256)) * 4]
)
def test_rejects_what_is_not_onnx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(onnx_file.NotOnnxError):
        onnx_file.read_header(path)

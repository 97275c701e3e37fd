"""`modelyard digest` and `inspect` (no torch needed), and their answers to bad files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hack.testbed.onnx_models import tiny_model
from modelyard_runtime.contract.gpu import gpu_present


def modelyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard_cli", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_digest_prints_the_sha256_and_writes_a_manifest(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    result = modelyard("digest", str(model), "--version", "v7")
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert result.stdout.strip() == digest
    manifest = json.loads((tmp_path / "tiny.manifest.json").read_text())
    assert manifest["name"] == "tiny"
    assert manifest["version"] == "v7"
    assert manifest["sha256"] == digest
    assert manifest["inputs"] == [{"name": "x", "datatype": "float32", "shape": ["N", 4]}]
    assert {o["name"] for o in manifest["outputs"]} == {"double", "total"}
    assert manifest["opset"] > 0


def test_inspect_lists_interface_and_operators(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    result = modelyard("inspect", str(model), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["inputs"][0]["shape"] == ["N", 4]
    assert info["operators"] == {"Mul": 1, "ReduceSum": 1}
    assert info["warnings"] == []
    text = modelyard("inspect", str(model)).stdout
    assert "input  x: float32 ['N', 4]" in text


def test_inspect_says_when_a_gpu_provider_cannot_be_checked(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    info = json.loads(modelyard("inspect", str(model), "--provider", "cuda", "--json").stdout)
    if gpu_present():
        pytest.skip("a GPU is present: the check runs for real")
    assert any("cannot be checked here" in w for w in info["warnings"])


@pytest.mark.parametrize("command", ["quantize", "digest", "inspect"])
def test_non_onnx_file_is_a_clear_error(command: str, tmp_path: Path) -> None:
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"definitely not protobuf \x00\xff" * 10)
    extra = ["--mode", "int8-dynamic"] if command == "quantize" else []
    result = modelyard(command, str(junk), *extra)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "is not an ONNX model" in result.stderr


def test_missing_file_and_static_without_calibration(tmp_path: Path) -> None:
    result = modelyard("digest", str(tmp_path / "absent.onnx"))
    assert result.returncode == 1
    assert "no such file" in result.stderr
    result = modelyard("quantize", str(tmp_path / "absent.onnx"), "--mode", "int8-static")
    assert result.returncode == 1
    assert "int8-static needs --calibration" in result.stderr

"""Each example end to end: export -> parity -> quantise -> digest -> served by the runtime,
whose answers are compared with torch's."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hack.testbed.processes import RuntimeProcess

pytestmark = [pytest.mark.export, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["tabular_mlp", "image_classifier", "tiny_lm"]


def modelyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard_cli", *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


def checkpoint(example: str, path: Path) -> Any:
    module = importlib.import_module(f"examples.{example}")
    torch.manual_seed(0)
    model = module.build().eval()
    torch.save(model.state_dict(), path)
    return module, model


def infer(url: str, name: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    datatypes = {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64"}
    body = {
        "inputs": [
            {"name": k, "shape": list(v.shape), "datatype": datatypes[v.dtype],
             "data": v.ravel().tolist()}
            for k, v in inputs.items()
        ]
    }  # fmt: skip
    request = urllib.request.Request(
        f"{url}/v2/models/{name}/infer", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        output = json.loads(response.read())["outputs"][0]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_exports_quantizes_digests_and_serves(example: str, tmp_path: Path) -> None:
    module, model = checkpoint(example, tmp_path / "state.pt")
    onnx_path = tmp_path / f"{example}.onnx"
    args = ["export", f"examples.{example}:build", "--checkpoint", str(tmp_path / "state.pt"),
            "--out", str(onnx_path), "--token-high", "64"]  # fmt: skip
    for spec in module.INPUTS:
        args += ["--input", spec]
    for name in module.OUTPUTS:
        args += ["--output-name", name]
    exported = modelyard(*args)
    assert exported.returncode == 0, exported.stderr
    assert "parity: onnxruntime vs torch on" in exported.stdout

    quantized = modelyard("quantize", str(onnx_path), "--mode", "int8-dynamic",
                          "--report", str(tmp_path / "report.json"))  # fmt: skip
    assert quantized.returncode == 0, quantized.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["size_after"] < report["size_before"]
    assert Path(report["out"]).is_file()

    digested = modelyard("digest", str(onnx_path), "--name", example, "--version", "v3")
    assert digested.returncode == 0, digested.stderr
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert digested.stdout.strip() == digest
    manifest = json.loads(onnx_path.with_suffix(".manifest.json").read_text())
    assert (manifest["name"], manifest["version"], manifest["sha256"]) == (example, "v3", digest)
    assert manifest["inputs"][0]["shape"][0] == "batch"

    samples = {k: v.numpy() for k, v in module.sample_inputs().items()}
    with torch.no_grad():
        expected = model(*[torch.from_numpy(v) for v in samples.values()]).numpy()
    server = RuntimeProcess(["--model", str(onnx_path), "--name", example, "--sha256", digest])
    try:
        url = server.wait_ready()
        served = infer(url, example, samples)
    finally:
        server.terminate()
        server.wait()
    np.testing.assert_allclose(served, expected, rtol=1e-3, atol=1e-4)


def test_fp16_and_static_int8_keep_fp32_io_and_report_agreement(tmp_path: Path) -> None:
    module, _ = checkpoint("tabular_mlp", tmp_path / "state.pt")
    onnx_path = tmp_path / "mlp.onnx"
    result = modelyard("export", "examples.tabular_mlp:build", "--checkpoint",
                       str(tmp_path / "state.pt"), "--input", "features:1x16", "--out",
                       str(onnx_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    calibration = tmp_path / "calibration.npz"
    np.savez(calibration, features=module.sample_inputs(64)["features"].numpy())
    for mode in ("fp16", "int8-static"):
        report_path = tmp_path / f"{mode}.json"
        done = modelyard("quantize", str(onnx_path), "--mode", mode, "--calibration",
                         str(calibration), "--report", str(report_path))  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(report_path.read_text())
        assert report["top1_agreement"] >= 0.9, report
        inspected = modelyard("inspect", report["out"], "--json")
        info = json.loads(inspected.stdout)
        assert info["inputs"][0]["datatype"] == "float32"
        assert info["outputs"][0]["datatype"] == "float32"


def test_prune_then_export(tmp_path: Path) -> None:
    checkpoint("tabular_mlp", tmp_path / "state.pt")
    pruned = modelyard("prune", "examples.tabular_mlp:build", "--checkpoint",
                       str(tmp_path / "state.pt"), "--input", "features:1x16", "--amount", "0.5",
                       "--out", str(tmp_path / "pruned.pt"))  # fmt: skip
    assert pruned.returncode == 0, pruned.stderr
    assert "weight sparsity now 50.0%" in pruned.stdout
    state = torch.load(tmp_path / "pruned.pt", weights_only=True)
    weights = [v for k, v in state.items() if k.endswith("weight")]
    assert sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights) == 0.5
    exported = modelyard("export", "examples.tabular_mlp:build", "--checkpoint",
                         str(tmp_path / "pruned.pt"), "--input", "features:1x16",
                         "--out", str(tmp_path / "pruned.onnx"))  # fmt: skip
    assert exported.returncode == 0, exported.stderr


def test_other_dynamic_axes_and_unnamed_input_shape(tmp_path: Path) -> None:
    _, model = checkpoint("tiny_lm", tmp_path / "state.pt")
    onnx_path = tmp_path / "lm.onnx"
    result = modelyard(
        "export", "examples.tiny_lm:build", "--checkpoint", str(tmp_path / "state.pt"),
        "--input-shape", "1x16:int64", "--output-name", "logits", "--token-high", "64",
        "--dynamic", "input:1:sequence", "--dynamic", "logits:1:sequence", "--out", str(onnx_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(modelyard("inspect", str(onnx_path), "--json").stdout)
    assert info["inputs"][0]["name"] == "input"
    assert info["inputs"][0]["shape"] == ["batch", "sequence"]
    assert info["outputs"][0]["shape"][:2] == ["batch", "sequence"]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    tokens = np.random.default_rng(3).integers(0, 64, size=(2, 8)).astype(np.int64)
    with torch.no_grad():
        expected = model(torch.from_numpy(tokens)).numpy()
    (got,) = session.run(None, {"input": tokens})
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_bad_dynamic_axis_is_refused(tmp_path: Path) -> None:
    checkpoint("tabular_mlp", tmp_path / "state.pt")
    result = modelyard("export", "examples.tabular_mlp:build", "--input", "features:1x16",
                       "--dynamic", "nothing:1", "--out", str(tmp_path / "m.onnx"))  # fmt: skip
    assert result.returncode == 1
    assert "--dynamic 'nothing:1': expected NAME:AXIS[:LABEL]" in result.stderr

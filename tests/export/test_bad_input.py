"""Every bad input to the model CLI: a clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.export]
ROOT = Path(__file__).resolve().parents[2]

BROKEN = """
import torch
from torch import nn


class Noisy(nn.Module):
    def forward(self, x):
        return x + torch.rand_like(x)


class Spectral(nn.Module):
    def forward(self, x):
        return torch.fft.fft(x).real


def noisy():
    return Noisy()


def spectral():
    return Spectral()


def not_a_module():
    return 42
"""


def modelyard(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard_cli", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd,
    )  # fmt: skip


def assert_clean_failure(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def export(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return modelyard("export", *args, "--out", "/tmp/modelyard-never-written.onnx", cwd=cwd)


def test_module_that_does_not_import() -> None:
    assert_clean_failure(
        export("examples.nonexistent:build", "--input", "x:1x4"),
        "cannot import 'examples.nonexistent': ModuleNotFoundError",
    )


def test_factory_that_is_missing_or_not_a_module(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    assert_clean_failure(
        export("broken:absent", "--input", "x:1x4", cwd=tmp_path), "has no callable 'absent'"
    )
    assert_clean_failure(
        export("broken:not_a_module", "--input", "x:1x4", cwd=tmp_path),
        "returned int, not a torch.nn.Module",
    )


def test_checkpoint_that_does_not_match_names_the_keys(tmp_path: Path) -> None:
    state = {"0.weight": torch.zeros(64, 16), "extra.bias": torch.zeros(3)}
    torch.save(state, tmp_path / "state.pt")
    result = export("examples.tabular_mlp:build", "--checkpoint", str(tmp_path / "state.pt"),
                    "--input", "features:1x16")  # fmt: skip
    assert_clean_failure(result, "does not match the module: missing keys ['0.bias', '2.bias'")
    assert "unexpected keys ['extra.bias']" in result.stderr


def test_input_shape_the_module_rejects() -> None:
    assert_clean_failure(
        export("examples.tabular_mlp:build", "--input", "features:1x15"),
        "the module rejected inputs of shape features 1x15",
    )


@pytest.mark.parametrize("spec", ["features", "features:1xA", "features:0x16", "x:1x4:complex"])
def test_malformed_input_spec(spec: str) -> None:
    assert_clean_failure(export("examples.tabular_mlp:build", "--input", spec), "--input")


def test_operator_the_exporter_cannot_handle(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    assert_clean_failure(
        export("broken:spectral", "--input", "x:1x8", cwd=tmp_path), "torch.onnx.export failed"
    )


def test_parity_failure_names_the_worst_element(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    result = modelyard("export", "broken:noisy", "--input", "x:2x8", "--out",
                       str(tmp_path / "noisy.onnx"), cwd=tmp_path)  # fmt: skip
    assert_clean_failure(result, "parity check failed: output 'output' differs by up to")
    assert "(onnxruntime " in result.stderr
    assert "tolerance rtol=0.001 atol=0.0001" in result.stderr

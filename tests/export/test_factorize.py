"""`modelyard factorize`: the ranks the energy rule must choose (recomputed here with numpy's
SVD), a report that holds up, a checkpoint that export and prune load with the unchanged
factory, layers left alone with the reason, and bad selections refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from modelyard_cli.main import main
from modelyard_cli.models.export import build_module
from tests.export.conftest import Trained

pytestmark = [pytest.mark.export]
TARGET = "examples.tabular_mlp:build"


def factorize(*args: str) -> int:
    return main(["factorize", TARGET, "--input", "features:1x16", "--threads", "1", *args])


def test_energy_picks_the_smallest_rank_and_the_result_exports_with_the_factory(
    tabular_teacher: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, onnx_path, report_path = tmp_path / "f.pt", tmp_path / "f.onnx", tmp_path / "f.json"
    code = factorize(
        "--checkpoint", str(tabular_teacher.checkpoint), "--energy", "0.9",
        "--data", str(tabular_teacher.eval_data), "--out", str(out),
        "--out-onnx", str(onnx_path), "--report", str(report_path),
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    original = build_module(TARGET, tabular_teacher.checkpoint)
    for layer in report["layers"]:
        weight = original.get_submodule(layer["name"]).weight.detach().double().numpy()
        squares = np.linalg.svd(weight, compute_uv=False) ** 2
        kept = np.cumsum(squares) / squares.sum()
        rank = int(np.argmax(kept >= 0.9)) + 1  # the first rank reaching 90%
        assert layer["rank"] == rank, layer
        assert layer["energy"] == pytest.approx(kept[rank - 1])
        inputs, outputs = weight.shape[1], weight.shape[0]
        smaller = rank * (inputs + outputs) < inputs * outputs
        assert (layer["skipped"] is None) == smaller, layer

    factorised = build_module(TARGET, out)  # the unchanged factory rebuilds the low-rank layers
    assert report["comparison"]["candidate"]["parameters"] == sum(
        p.numel() for p in factorised.parameters()
    )
    features = np.load(tabular_teacher.eval_data)["features"]
    with torch.no_grad():
        before = original(torch.from_numpy(features))
        after = factorised(torch.from_numpy(features))
    agreement = float((before.argmax(1) == after.argmax(1)).double().mean())
    assert report["comparison"]["top1_agreement"] == pytest.approx(agreement, abs=2 / len(features))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"features": features})[0], after.numpy(), rtol=1e-3, atol=1e-4
    )
    assert report["comparison"]["candidate"]["onnx_bytes"] == onnx_path.stat().st_size

    # export and prune take the factorised checkpoint with the plain factory
    assert main(["export", TARGET, "--checkpoint", str(out), "--input", "features:1x16",
                 "--out", str(tmp_path / "again.onnx")]) == 0  # fmt: skip
    assert main(["prune", TARGET, "--checkpoint", str(out), "--input", "features:1x16",
                 "--amount", "0.3", "--out", str(tmp_path / "pruned.pt")]) == 0  # fmt: skip
    pruned = build_module(TARGET, tmp_path / "pruned.pt")
    assert sum(p.numel() for p in pruned.parameters()) == sum(
        p.numel() for p in factorised.parameters()
    )


def test_layers_too_small_or_not_worth_it_are_left_alone_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "f.json"
    code = factorize("--rank", "8", "--min-features", "32", "--out", str(tmp_path / "f.pt"),
                     "--report", str(report_path))  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    layers = {layer["name"]: layer for layer in json.loads(report_path.read_text())["layers"]}
    assert layers["0"]["skipped"] == "smaller than --min-features 32"
    assert layers["4"]["skipped"] == "smaller than --min-features 32"
    assert layers["2"]["skipped"] is None
    assert (layers["2"]["parameters_before"], layers["2"]["parameters_after"]) == (4160, 1088)
    assert "0 (16 -> 64): left as it is, smaller than --min-features 32" in printed.out

    code = factorize("--rank", "40", "--out", str(tmp_path / "none.pt"))
    err = capsys.readouterr().err
    assert code == 1
    assert "no layer of examples.tabular_mlp:build was factorised" in err
    assert "rank 40 would need 5,184 parameters, not fewer than the 4,160 it has" in err
    assert not (tmp_path / "none.pt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rank", "0"], "--rank must be at least 1, got 0"),
        (["--energy", "1.5"], "--energy must be in (0, 1], got 1.5"),
        (["--energy", "0"], "--energy must be in (0, 1], got 0.0"),
        (["--rank", "2", "--min-features", "-1"], "--min-features must be 0 or more"),
    ],
)
def test_bad_selection_is_refused(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert factorize(*args, "--out", str(tmp_path / "f.pt")) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "f.pt").exists()

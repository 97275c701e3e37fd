"""The export pipeline needs torch (the `export` extra); without it these tests skip.

Shared here: the tabular example trained on its synthetic data (a teacher worth distilling),
its ONNX export, a training set and a separate evaluation set, made once per session.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the export extra (torch) is not installed")


@dataclasses.dataclass(frozen=True)
class Trained:
    checkpoint: Path
    onnx: Path
    data: Path
    eval_data: Path


@pytest.fixture(scope="session")
def tabular_teacher(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    import torch

    import examples.tabular_mlp as example
    from examples.train import fit
    from modelyard_cli.models.export import InputSpec, export_onnx

    work = tmp_path_factory.mktemp("tabular-teacher")
    torch.set_num_threads(1)
    train = example.synthetic_data(2000, seed=0)
    torch.manual_seed(0)
    model = fit(example.build(), train, epochs=10, lr=1e-2)
    torch.save(model.state_dict(), work / "teacher.pt")
    spec = InputSpec.parse(example.INPUTS[0])
    export_onnx(model, [spec], work / "teacher.onnx", output_names=example.OUTPUTS, opset=17,
                token_high=16)  # fmt: skip
    np.savez(work / "data.npz", allow_pickle=False, **train)
    np.savez(work / "eval.npz", allow_pickle=False, **example.synthetic_data(500, seed=1))
    return Trained(work / "teacher.pt", work / "teacher.onnx", work / "data.npz", work / "eval.npz")

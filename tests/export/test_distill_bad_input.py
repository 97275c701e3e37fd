"""Every bad input to `modelyard distill` fails before training starts, with one error line
that names the problem, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelyard_cli.main import main
from tests.export.conftest import Trained

pytestmark = [pytest.mark.export]

WRONG_STUDENTS = """
from torch import nn


def five_classes():
    return nn.Linear(16, 5)


def wants_eight_features():
    return nn.Linear(8, 3)


def sixteen_features():  # declares no INPUTS: only running it shows what it takes
    return nn.Linear(16, 3)
"""

TEACHER = "examples.tabular_mlp:build"
STUDENT = "examples.tabular_mlp:build_student"
Case = Callable[[Path, Trained], list[str]]


def rows(n: int = 64, width: int = 16, **arrays: np.ndarray) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(0)
    data = {"features": generator.standard_normal((n, width)).astype(np.float32)}
    return data | {"labels": generator.integers(0, 3, size=n)} | arrays


def npz(tmp: Path, name: str, arrays: dict[str, np.ndarray]) -> str:
    np.savez(tmp / name, allow_pickle=False, **arrays)
    return str(tmp / name)


def base(teacher: Trained, data: str | None = None, student: str = STUDENT) -> list[str]:
    return ["--teacher", TEACHER, "--teacher-checkpoint", str(teacher.checkpoint),
            "--student", student, "--data", data or str(teacher.eval_data)]  # fmt: skip


CASES: dict[str, tuple[Case, str]] = {
    "alpha above 1": (
        lambda tmp, t: [*base(t), "--alpha", "1.5"],
        "--alpha must be between 0 and 1 (the weight of the label loss), got 1.5",
    ),
    "alpha below 0": (
        lambda tmp, t: [*base(t), "--alpha", "-0.1"],
        "--alpha must be between 0 and 1",
    ),
    "temperature 0": (
        lambda tmp, t: [*base(t), "--temperature", "0"],
        "--temperature must be greater than 0, got 0.0",
    ),
    "negative temperature": (
        lambda tmp, t: [*base(t), "--temperature", "-2"],
        "--temperature must be greater than 0, got -2.0",
    ),
    "no epochs": (lambda tmp, t: [*base(t), "--epochs", "0"], "--epochs must be greater than 0"),
    "batch of 0": (
        lambda tmp, t: [*base(t), "--batch-size", "0"],
        "--batch-size must be greater than 0",
    ),
    "learning rate 0": (lambda tmp, t: [*base(t), "--lr", "0"], "--lr must be greater than 0"),
    "student with another output shape": (
        lambda tmp, t: [*base(t, student="wrong:five_classes")],
        "the student's output has shape (2, 5) but the teacher's has (2, 3)",
    ),
    "student that takes another input": (
        lambda tmp, t: [*base(t, student="wrong:wants_eight_features")],
        "the student rejected the data set's inputs (features (2, 16))",
    ),
    "rows of the wrong shape": (
        lambda tmp, t: [
            *base(t, npz(tmp, "d.npz", rows(width=15))),
            "--input",
            "features:1x16",
        ],
        "array 'features' has shape (64, 15), but input 'features' takes rows of shape 16",
    ),
    "rows of the wrong shape for an onnx teacher": (
        lambda tmp, t: [
            "--teacher",
            str(t.onnx),
            "--student",
            STUDENT,
            "--data",
            npz(tmp, "d.npz", rows(width=15)),
        ],
        "array 'features' has shape (64, 15), but input 'features' takes rows of shape 16",
    ),
    "rows of the wrong shape for the INPUTS the teacher's module declares": (
        lambda tmp, t: base(t, npz(tmp, "d.npz", rows(width=15))),
        "array 'features' has shape (64, 15), but input 'features' takes rows of shape 16",
    ),
    "images of the wrong size for a CNN that would take them": (
        lambda tmp, t: [
            "--teacher",
            "examples.image_classifier:build",
            "--student",
            "examples.image_classifier:build_student",
            "--data",
            npz(tmp, "d.npz", {"image": np.zeros((8, 3, 28, 28), np.float32)}),
        ],
        "array 'image' has shape (8, 3, 28, 28), but input 'image' takes rows of shape 3x32x32",
    ),
    "rows the teacher rejects": (
        lambda tmp, t: [
            "--teacher",
            "wrong:sixteen_features",
            "--student",
            "wrong:sixteen_features",
            "--data",
            npz(tmp, "d.npz", rows(width=15)),
        ],
        "the teacher rejected the data set's inputs (features (2, 15))",
    ),
    "integer features for a float input": (
        lambda tmp, t: [
            *base(t, npz(tmp, "d.npz", rows(features=np.ones((64, 16), np.int64)))),
            "--input",
            "features:1x16",
        ],
        "array 'features' holds int64 values, but input 'features' takes float32",
    ),
    "missing input array": (
        lambda tmp, t: [*base(t), "--input", "x:1x16"],
        "has no array for input(s) ['x'] (it holds features (500, 16), labels (500,))",
    ),
    "missing labels array that was named": (
        lambda tmp, t: [*base(t), "--labels", "classes"],
        "has no labels array 'classes'",
    ),
    "labels and rows of different lengths": (
        lambda tmp, t: base(t, npz(tmp, "d.npz", rows(labels=np.zeros(63, np.int64)))),
        "labels 'labels' have 63 rows, the inputs 64",
    ),
    "labels past the classes": (
        lambda tmp, t: base(t, npz(tmp, "d.npz", rows(labels=np.full(64, 3)))),
        "labels run from 3 to 3, but the teacher has 3 classes (0 to 2)",
    ),
    "alpha above 0 without labels": (
        lambda tmp, t: [
            *base(t, npz(tmp, "d.npz", {"features": rows()["features"]})),
            "--alpha",
            "0.5",
        ],
        "--alpha 0.5 weights a loss on labels, but",
    ),
    "data set that is not an npz": (
        lambda tmp, t: base(t, str(t.checkpoint)),
        "teacher.pt has no array for input(s) ['features']",
    ),
    "teacher checkpoint with an onnx teacher": (
        lambda tmp, t: [
            "--teacher",
            str(tmp / "t.onnx"),
            "--teacher-checkpoint",
            str(t.checkpoint),
            "--student",
            STUDENT,
            "--data",
            str(t.data),
        ],
        "--teacher-checkpoint is for a PyTorch teacher",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_training_and_names_the_problem(
    case: str,
    tabular_teacher: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "wrong.py").write_text(WRONG_STUDENTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    build, message = CASES[case]
    out = tmp_path / "student.pt"
    code = main(["distill", *build(tmp_path, tabular_teacher), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("modelyard distill: error: "), err
    assert message in err
    assert "epoch" not in err.replace("epochs must", "")  # no training began
    assert not out.exists()

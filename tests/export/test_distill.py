"""`modelyard distill`: a student that agrees with its teacher, a report whose numbers hold up
when recomputed here with torch alone, an ONNX teacher, reproducibility, and Ctrl-C."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import examples.tabular_mlp as tabular
import examples.tiny_lm as tiny_lm
from modelyard_cli.main import main
from modelyard_cli.models.distill import distillation_loss
from modelyard_cli.models.export import build_module
from tests.export.conftest import Trained

pytestmark = [pytest.mark.export]
ROOT = Path(__file__).resolve().parents[2]
AGREEMENT = 0.85  # the stated floor for the tabular student (docs/export.md)


def torch_logits(module: torch.nn.Module, *inputs: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        result: torch.Tensor = module(*[torch.from_numpy(x) for x in inputs])
    return result


def distill(*args: str) -> int:
    return main(["distill", "--threads", "1", *args])


def test_tabular_student_agrees_with_its_teacher_and_the_report_recomputes(
    tabular_teacher: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report_path = tmp_path / "student.pt", tmp_path / "report.json"
    code = distill(
        "--teacher", "examples.tabular_mlp:build", "--teacher-checkpoint",
        str(tabular_teacher.checkpoint), "--student", "examples.tabular_mlp:build_student",
        "--data", str(tabular_teacher.data), "--eval-data", str(tabular_teacher.eval_data),
        "--epochs", "15", "--lr", "0.01", "--out", str(out), "--report", str(report_path),
    )  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "epoch 15/15: loss" in printed.err
    report = json.loads(report_path.read_text())
    comparison = report["comparison"]

    evaluation = np.load(tabular_teacher.eval_data)
    features, labels = evaluation["features"], evaluation["labels"]
    teacher = build_module("examples.tabular_mlp:build", tabular_teacher.checkpoint)
    student = build_module("examples.tabular_mlp:build_student", out)
    t, s = torch_logits(teacher, features), torch_logits(student, features)
    agreement = float((t.argmax(1) == s.argmax(1)).double().mean())
    kl = torch.nn.functional.kl_div(
        s.log_softmax(1), t.log_softmax(1), log_target=True, reduction="batchmean"
    )
    assert agreement >= AGREEMENT
    assert comparison["top1_agreement"] == pytest.approx(agreement, abs=1.5 / len(labels))
    assert comparison["mean_kl"] == pytest.approx(float(kl), rel=1e-3, abs=1e-5)
    assert comparison["rows"] == len(labels)
    assert comparison["reference"]["accuracy"] == pytest.approx(
        float((t.argmax(1).numpy() == labels).mean()), abs=1.5 / len(labels)
    )
    assert comparison["candidate"]["accuracy"] == pytest.approx(
        float((s.argmax(1).numpy() == labels).mean()), abs=1.5 / len(labels)
    )
    assert comparison["reference"]["parameters"] == sum(p.numel() for p in teacher.parameters())
    assert comparison["candidate"]["parameters"] == sum(p.numel() for p in student.parameters())
    latencies = comparison["reference"]["latency_ms"], comparison["candidate"]["latency_ms"]
    assert comparison["latency_ratio"] == pytest.approx(latencies[1] / latencies[0])
    assert report["train_rows"] == 2000
    assert len(report["epoch_losses"]) == 15

    # The student goes on through export like any model; the file the report sized is that file.
    exported = tmp_path / "student.onnx"
    assert main(["export", "examples.tabular_mlp:build_student", "--checkpoint", str(out),
                 "--input", "features:1x16", "--out", str(exported)]) == 0  # fmt: skip
    assert comparison["candidate"]["onnx_bytes"] == exported.stat().st_size


def test_onnx_teacher_without_labels_and_the_lm_perplexity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    torch.save(tiny_lm.build().state_dict(), tmp_path / "lm.pt")
    teacher_onnx = tmp_path / "lm.onnx"
    assert main(["export", "examples.tiny_lm:build", "--checkpoint", str(tmp_path / "lm.pt"),
                 "--input", "tokens:1x16:int64", "--token-high", "64", "--output-name",
                 "logits", "--out", str(teacher_onnx)]) == 0  # fmt: skip
    tokens = tiny_lm.synthetic_data(120, seed=3)["tokens"]
    np.savez(tmp_path / "tokens.npz", tokens=tokens)
    report_path = tmp_path / "report.json"
    code = distill(
        "--teacher", str(teacher_onnx), "--student", "examples.tiny_lm:build_student",
        "--data", str(tmp_path / "tokens.npz"), "--holdout", "0.25", "--seed", "5",
        "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / "student.pt"),
        "--report", str(report_path),
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["alpha"] == 0  # no labels: the teacher alone

    # The documented split: the first ceil(0.25 * rows) of permutation(rows) with the seed.
    held = tokens[np.random.default_rng(5).permutation(120)[: math.ceil(0.25 * 120)]]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(teacher_onnx), providers=["CPUExecutionProvider"])
    teacher = torch.from_numpy(session.run(None, {"tokens": held})[0])
    student = torch_logits(build_module("examples.tiny_lm:build_student",
                                        tmp_path / "student.pt"), held)  # fmt: skip

    def perplexity(logits: torch.Tensor) -> float:
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, 64), torch.from_numpy(held[:, 1:]).reshape(-1)
        )
        return math.exp(float(nll))

    comparison = report["comparison"]
    assert comparison["rows"] == len(held)
    assert comparison["reference"]["perplexity"] == pytest.approx(perplexity(teacher), rel=1e-4)
    assert comparison["candidate"]["perplexity"] == pytest.approx(perplexity(student), rel=1e-4)
    assert comparison["reference"]["accuracy"] is None
    agreement = float((teacher.argmax(-1) == student.argmax(-1)).double().mean())
    assert comparison["top1_agreement"] == pytest.approx(agreement, abs=2 / held.size)


def test_the_same_seed_gives_the_same_student(tabular_teacher: Trained, tmp_path: Path) -> None:
    def run(seed: int, name: str) -> dict[str, torch.Tensor]:
        out = tmp_path / name
        assert distill(
            "--teacher", "examples.tabular_mlp:build", "--teacher-checkpoint",
            str(tabular_teacher.checkpoint), "--student", "examples.tabular_mlp:build_student",
            "--data", str(tabular_teacher.eval_data), "--epochs", "2", "--seed", str(seed),
            "--out", str(out),
        ) == 0  # fmt: skip
        state: dict[str, torch.Tensor] = torch.load(out, weights_only=True)
        return state

    first, again, other = run(3, "a.pt"), run(3, "b.pt"), run(4, "c.pt")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_loss_is_alpha_ce_plus_t_squared_kd() -> None:
    rng = np.random.default_rng(0)
    student, teacher = rng.standard_normal((2, 3, 5, 7))  # an LM-shaped batch: 3 x 5 positions
    labels = rng.integers(0, 7, size=(3, 5))
    alpha, temperature = 0.3, 2.5

    def log_softmax(x: np.ndarray) -> np.ndarray:
        shifted = x - x.max(-1, keepdims=True)
        result: np.ndarray = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        return result

    p_t, log_s = log_softmax(teacher / temperature), log_softmax(student / temperature)
    kd = np.mean(np.sum(np.exp(p_t) * (p_t - log_s), axis=-1))
    ce = -np.mean(np.take_along_axis(log_softmax(student), labels[..., None], -1))
    got = distillation_loss(
        torch.from_numpy(student), torch.from_numpy(teacher), torch.from_numpy(labels),
        alpha=alpha, temperature=temperature,
    )  # fmt: skip
    assert float(got) == pytest.approx(alpha * ce + (1 - alpha) * temperature**2 * kd)
    kd_only = distillation_loss(torch.from_numpy(student), torch.from_numpy(teacher), None,
                                alpha=0.0, temperature=temperature)  # fmt: skip
    assert float(kd_only) == pytest.approx(temperature**2 * kd)


def test_ctrl_c_saves_the_last_completed_epoch(tabular_teacher: Trained, tmp_path: Path) -> None:
    out = tmp_path / "student.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "modelyard_cli", "distill", "--teacher",
         "examples.tabular_mlp:build", "--teacher-checkpoint", str(tabular_teacher.checkpoint),
         "--student", "examples.tabular_mlp:build_student", "--data",
         str(tabular_teacher.eval_data), "--epochs", "1000000", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell that starts jobs in the background ignores SIGINT for them; undo that here.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # ends when the process closes stderr, i.e. exits
        seen.append(line)
        if line.startswith("epoch 1/"):
            break
    assert seen[-1].startswith("epoch 1/"), "".join(seen)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 130, rest
    message = [line for line in rest.splitlines() if line.startswith("modelyard distill:")]
    assert len(message) == 1, rest
    assert message[0].startswith("modelyard distill: error: interrupted during epoch ")
    saved = Path(message[0].split(" to ", 1)[1].split(" (")[0])
    epoch = int(saved.stem.rsplit("epoch", 1)[1])
    finished = [line for line in [*seen, *rest.splitlines()] if line.startswith("epoch ")]
    assert finished[-1].startswith(f"epoch {epoch}/")  # the last epoch reported as done
    assert saved == tmp_path / f"student.epoch{epoch}.pt"
    assert not out.exists()
    student: Any = build_module("examples.tabular_mlp:build_student", saved)
    assert torch_logits(student, np.zeros((1, 16), np.float32)).shape == (1, tabular.CLASSES)

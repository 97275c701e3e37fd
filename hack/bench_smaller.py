"""Part of ``make bench-export``: every way modelyard makes a model smaller, against one teacher.

For each example: train the teacher on its synthetic data set (``examples.train``), export it,
then make a smaller model each way (quantize int8-dynamic and fp16, prune 50 %, factorize by
energy 0.9, factorize at a low rank and then distil that to recover, distil into the example's
student, and that student quantised) and measure each against the teacher with
``measure.compare_models``: the same held-out rows, one onnxruntime thread, interleaved runs.
Called by ``hack.bench_export``; a benchmark, not a test.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from examples.train import fit
from modelyard_cli.errors import ModelToolError
from modelyard_cli.models import distill, export, factorize, measure
from modelyard_cli.models.progress import Silent
from modelyard_cli.models.prune import prune_module
from modelyard_cli.models.quantize import quantize


@dataclasses.dataclass(frozen=True)
class Plan:
    rows: int
    teacher_epochs: int
    distill_epochs: int
    low_rank: int


PLANS: Final = {
    "tabular_mlp": Plan(rows=4000, teacher_epochs=20, distill_epochs=40, low_rank=4),
    "tiny_lm": Plan(rows=2000, teacher_epochs=8, distill_epochs=10, low_rank=8),
    "image_classifier": Plan(rows=2000, teacher_epochs=3, distill_epochs=3, low_rank=4),
}
HEADER: Final = (
    "| model | method | parameters | ONNX size | latency vs teacher | top-1 agreement | "
    "mean KL | accuracy / perplexity | time to make |\n|---|---|---|---|---|---|---|---|---|"
)


def section(date: str, work: Path) -> list[str]:
    torch.set_num_threads(1)
    rows = []
    for name, plan in PLANS.items():
        print(f"bench-export: {name}: teacher, then each smaller model", flush=True)
        rows += Example(name, plan, work / name).rows()
    return [
        "## Smaller models from one trained teacher: distill, factorize, prune, quantize",
        "",
        f"`make bench-export` on {date}, 2 shared vCPUs, onnxruntime CPU with one thread. Each",
        "teacher is trained on its example's synthetic data set (`examples.train`, 80 % of the",
        "rows); every row is measured against it on the other 20 % with the code of the",
        "`distill` and `factorize` reports. Latency: a batch of 32, the fastest of 50 runs",
        "interleaved with the teacher's, as a ratio to the teacher's in the same measurement",
        "(the teacher-vs-itself row shows the noise). Accuracy is on the data set's labels",
        "(the teachers are trained briefly and some students beat them), perplexity (tiny_lm)",
        "on the next tokens. Time to make: training, export and measuring, one torch thread.",
        "",
        HEADER,
        *rows,
    ]


class Example:
    def __init__(self, name: str, plan: Plan, work: Path) -> None:
        self.name, self.plan, self.work = name, plan, work
        work.mkdir(parents=True, exist_ok=True)
        self.module: Any = importlib.import_module(f"examples.{name}")
        self.target = f"examples.{name}:build"
        self.specs = [export.InputSpec.parse(text) for text in self.module.INPUTS]
        self.token_high = 64

    def rows(self) -> list[str]:
        teacher = self._teacher()
        onnx_path = self.work / "teacher.onnx"
        self._export(teacher, onnx_path)
        count = sum(p.numel() for p in teacher.parameters())
        held = dict(np.load(self.work / "eval.npz"))
        labels = held.pop("labels")
        measured = [("teacher (fp32)", onnx_path, count, 0.0)]
        for mode in ("int8-dynamic", "fp16"):
            out = self.work / f"teacher.{mode}.onnx"
            seconds = _timed(
                functools.partial(quantize, onnx_path, out, mode=mode, calibration=None)
            )
            measured.append((f"quantize {mode}", out, count, seconds))
        measured.append(self._pruned())
        measured.append(self._factorised())
        measured += self._factorised_then_distilled()
        student_row = self._distilled()
        measured.append(student_row)
        out = self.work / "student.int8-dynamic.onnx"
        seconds = _timed(
            lambda: quantize(student_row[1], out, mode="int8-dynamic", calibration=None)
        )
        measured.append(
            ("distill, then int8-dynamic", out, student_row[2], student_row[3] + seconds)
        )
        return [self._row(m, onnx_path, count, held, labels) for m in measured]

    def _teacher(self) -> Any:
        data = self.module.synthetic_data(self.plan.rows, seed=0)
        held = np.random.default_rng(0).permutation(self.plan.rows)[: self.plan.rows // 5]
        train = np.setdiff1d(np.arange(self.plan.rows), held)
        np.savez(self.work / "train.npz", **{k: v[train] for k, v in data.items()})
        np.savez(self.work / "eval.npz", **{k: v[held] for k, v in data.items()})
        torch.manual_seed(0)
        model = fit(self.module.build(), {k: v[train] for k, v in data.items()},
                    epochs=self.plan.teacher_epochs)  # fmt: skip
        torch.save(model.state_dict(), self.work / "teacher.pt")
        return model

    def _export(self, model: Any, path: Path) -> None:
        export.export_onnx(model, self.specs, path, output_names=self.module.OUTPUTS, opset=17,
                           token_high=self.token_high)  # fmt: skip

    def _pruned(self) -> tuple[str, Path, int, float]:
        model = export.build_module(self.target, self.work / "teacher.pt")
        started = time.perf_counter()
        prune_module(model, amount=0.5, inputs=self.specs, out=self.work / "pruned.pt",
                     token_high=self.token_high)  # fmt: skip
        self._export(model, self.work / "pruned.onnx")
        seconds = time.perf_counter() - started
        return ("prune 50 % (zeros kept)", self.work / "pruned.onnx", _parameters(model), seconds)

    def _factorised(self, energy: float = 0.9) -> tuple[str, Path, int, float]:
        out = self.work / "factorised.onnx"
        try:
            seconds = _timed(lambda: self._factorize(factorize.Selection(energy=energy), out))
        except ModelToolError as e:
            return (f"factorize --energy {energy}: {e}", Path(), 0, 0.0)
        model = export.build_module(self.target, self.work / "factorised.pt")
        return (f"factorize --energy {energy}", out, _parameters(model), seconds)

    def _factorize(self, selection: factorize.Selection, out: Path) -> None:
        factorize.factorize(
            self.target, self.work / "teacher.pt", self.specs, selection,
            out=out.with_suffix(".pt"), out_onnx=out, output_names=self.module.OUTPUTS,
            data=self.work / "eval.npz", token_high=self.token_high,
        )  # fmt: skip

    def _factorised_then_distilled(self) -> list[tuple[str, Path, int, float]]:
        rank = self.plan.low_rank
        low = self.work / "low_rank.onnx"
        seconds = _timed(lambda: self._factorize(factorize.Selection(rank=rank), low))
        truncated = export.build_module(self.target, low.with_suffix(".pt"))
        path, count, more = self._distil(
            self.target, "low_rank_distilled", start=low.with_suffix(".pt"),
            epochs=max(self.plan.distill_epochs // 2, 1), lr=3e-3,
        )  # fmt: skip
        return [
            (f"factorize --rank {rank}", low, _parameters(truncated), seconds),
            (f"factorize --rank {rank}, then distill", path, count, seconds + more),
        ]

    def _distilled(self) -> tuple[str, Path, int, float]:
        path, count, seconds = self._distil(
            f"examples.{self.name}:build_student", "student", start=None,
            epochs=self.plan.distill_epochs, lr=1e-2,
        )  # fmt: skip
        return ("distill into build_student", path, count, seconds)

    def _distil(
        self, student: str, stem: str, *, start: Path | None, epochs: int, lr: float
    ) -> tuple[Path, int, float]:
        out = self.work / f"{stem}.pt"
        sources = distill.Sources(
            teacher=self.target, teacher_checkpoint=self.work / "teacher.pt", student=student,
            student_checkpoint=start, data=self.work / "train.npz",
            eval_data=self.work / "eval.npz", output_names=self.module.OUTPUTS,
        )  # fmt: skip
        settings = distill.Settings(alpha=0.5, temperature=2.0, epochs=epochs, lr=lr)
        seconds = _timed(lambda: distill.distill(sources, settings, out, Silent()))
        model = export.build_module(student, out)
        self._export(model, out.with_suffix(".onnx"))
        return (out.with_suffix(".onnx"), _parameters(model), seconds)

    def _row(
        self, made: tuple[str, Path, int, float], teacher: Path, count: int,
        held: dict[str, np.ndarray], labels: np.ndarray,
    ) -> str:  # fmt: skip
        method, path, parameters, seconds = made
        if not parameters:
            return f"| {self.name} | {method} | | | | | | | |"
        c = measure.compare_models(teacher, path, feeds=held, labels=labels,
                                   parameters=(count, parameters), threads=1)  # fmt: skip
        ratios = c.as_dict()
        quality = (
            f"{c.candidate.perplexity:.3f} (teacher {c.reference.perplexity:.3f})"
            if c.candidate.perplexity is not None
            else f"{c.candidate.accuracy:.1%} (teacher {c.reference.accuracy:.1%})"
        )
        return (
            f"| {self.name} | {method} | {parameters:,} | {c.candidate.onnx_bytes / 1e3:.1f} kB "
            f"({ratios['onnx_size_ratio']:.2f}x) | {ratios['latency_ratio']:.2f}x "
            f"({c.candidate.latency_ms:.3f} ms) | {c.top1_agreement:.1%} | {c.mean_kl:.4f} | "
            f"{quality} | {seconds:.1f} s |"
        )


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _parameters(model: Any) -> int:
    return sum(int(p.numel()) for p in model.parameters())

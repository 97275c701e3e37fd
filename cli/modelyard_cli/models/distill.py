"""``modelyard distill``: train a small student to imitate a teacher (knowledge distillation).

For a batch with teacher logits ``z_t``, student logits ``z_s`` and labels ``y``, the loss is

    L = alpha * CE(y, z_s) + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

with the temperature ``T`` applied to both softmaxes and the KD term scaled by ``T^2`` (so its
gradients keep their size as ``T`` grows; Hinton et al., 2015). Every leading axis of the
logits (rows, and positions of a language model) is one prediction; both terms are means over
predictions. Without labels only the KD term is possible: ``alpha`` defaults to 0.5 with labels
and 0 without, and an explicit ``alpha > 0`` without labels is an error.

Everything that can be wrong is checked before training: the settings, the data set against
the teacher's inputs, and one probe batch through both models (the student's output shape
must be the teacher's). The student is then exported to ONNX so a student that cannot be
exported fails now, not after training. Ctrl-C during training saves the student as of the
last completed epoch and raises ``InterruptedCommandError``. After training: the checkpoint,
then the report of ``measure.compare_models`` on the evaluation rows. torch is imported lazily.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from modelyard_cli.errors import InterruptedCommandError
from modelyard_cli.models import dataset, export
from modelyard_cli.models.measure import Comparison, compare_models
from modelyard_cli.models.onnx_model import ModelToolError, need
from modelyard_cli.models.progress import TrainingProgress
from modelyard_cli.models.teacher import Teacher, load_teacher, probe

CACHE_BYTES: Final = 1 << 30  # teacher logits for the whole training set are kept up to this


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    alpha: float | None  # None: 0.5 with labels, 0 without
    temperature: float = 2.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    holdout: float = 0.2
    threads: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Sources:
    teacher: str  # MODULE:FACTORY or a .onnx file
    student: str  # MODULE:FACTORY
    data: Path
    teacher_checkpoint: Path | None = None
    student_checkpoint: Path | None = None
    eval_data: Path | None = None
    labels: str | None = None  # None: the array named "labels", if any
    inputs: Sequence[str] = ()  # --input texts; empty: from the ONNX teacher or the data set
    output_names: Sequence[str] = ()
    token_high: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DistillReport:
    teacher: str
    student: str
    alpha: float
    temperature: float
    epochs: int
    batch_size: int
    lr: float
    seed: int
    train_rows: int
    epoch_losses: list[float]
    comparison: Comparison

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return data | {"comparison": self.comparison.as_dict()}

    def lines(self) -> list[str]:
        return [
            f"distilled {self.teacher} into {self.student}: {self.epochs} epochs on "
            f"{self.train_rows} rows, alpha {self.alpha:g}, temperature {self.temperature:g}, "
            f"final loss {self.epoch_losses[-1]:.4f}",
            *self.comparison.lines("teacher", "student"),
        ]


def check_settings(settings: Settings) -> None:
    """Named problems with the numbers, before anything is loaded."""
    s = settings
    if s.alpha is not None and not 0 <= s.alpha <= 1:
        raise ModelToolError(f"--alpha must be between 0 and 1 (the weight of the label loss), "
                             f"got {s.alpha}")  # fmt: skip
    if not s.temperature > 0:
        raise ModelToolError(f"--temperature must be greater than 0, got {s.temperature}")
    for flag, value in (("--epochs", s.epochs), ("--batch-size", s.batch_size),
                        ("--lr", s.lr), ("--threads", s.threads)):  # fmt: skip
        if not value > 0:
            raise ModelToolError(f"{flag} must be greater than 0, got {value}")


def resolve_alpha(alpha: float | None, has_labels: bool, data: Path) -> float:
    if alpha is None:
        return 0.5 if has_labels else 0.0
    if alpha > 0 and not has_labels:
        raise ModelToolError(
            f"--alpha {alpha} weights a loss on labels, but {data} has no labels: add a "
            "'labels' array (or name it with --labels), or distil from the teacher alone with "
            "--alpha 0"
        )
    return alpha


def distillation_loss(
    student: Any, teacher: Any, labels: Any, *, alpha: float, temperature: float
) -> Any:
    """The loss above for torch logits ``(..., classes)``; ``labels`` may be None if alpha=0."""
    functional = need("torch.nn.functional")
    classes = student.shape[-1]
    s, t = student.reshape(-1, classes), teacher.reshape(-1, classes)
    kd = functional.kl_div(
        functional.log_softmax(s / temperature, dim=-1),
        functional.log_softmax(t / temperature, dim=-1),
        reduction="batchmean", log_target=True,
    ) * temperature**2  # fmt: skip
    if alpha == 0:
        return kd
    return alpha * functional.cross_entropy(s, labels.reshape(-1)) + (1 - alpha) * kd


def batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    """Consecutive slices of ``order``; a last batch of one row joins the one before it (batch
    norm cannot train on a single row)."""
    parts = [order[i : i + size] for i in range(0, len(order), size)]
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [np.concatenate(parts[-2:])]
    return parts


def distill(
    sources: Sources, settings: Settings, out: Path, progress: TrainingProgress
) -> DistillReport:
    check_settings(settings)
    torch = need("torch")
    torch.set_num_threads(settings.threads)
    teacher = load_teacher(sources.teacher, sources.teacher_checkpoint, threads=settings.threads)
    train, held = _data(sources, settings, teacher)
    alpha = resolve_alpha(settings.alpha, train.labels is not None, sources.data)
    torch.manual_seed(settings.seed)
    student = export.build_module(sources.student, sources.student_checkpoint)
    logits = probe(teacher, student, train)
    specs = train.specs()
    token_high = sources.token_high or _token_high(train, held)
    with tempfile.TemporaryDirectory(prefix="modelyard-distill-") as tmp:
        teacher_onnx = teacher.onnx or Path(tmp) / "teacher.onnx"
        if teacher.onnx is None:
            names = _output_names(sources.output_names, teacher.module, train)
            export.export_onnx(teacher.module, specs, teacher_onnx, output_names=names,
                               opset=17, token_high=token_high)  # fmt: skip
        student_onnx = Path(tmp) / "student.onnx"
        names = _output_names(sources.output_names or teacher.output_names, student, train)
        export.export_onnx(student, specs, student_onnx, output_names=names, opset=17,
                           token_high=token_high)  # fmt: skip
        targets = _targets(teacher, train, settings.batch_size, logits.shape[1:])
        losses = _train(student, train, targets, settings, alpha, out, progress)
        export.save_checkpoint(student.eval(), out)
        export.export_onnx(student, specs, student_onnx, output_names=names, opset=17,
                           token_high=token_high)  # fmt: skip
        samples = [[v[:8] for v in held.inputs.values()]]
        export.parity(student, student_onnx, specs, samples=samples, rtol=1e-3, atol=1e-4,
                      token_high=token_high)  # fmt: skip
        comparison = compare_models(
            teacher_onnx, student_onnx, feeds=held.inputs, labels=held.labels,
            parameters=(teacher.parameters(teacher_onnx),
                        sum(int(p.numel()) for p in student.parameters())),
            threads=settings.threads,
        )  # fmt: skip
    return DistillReport(
        teacher=sources.teacher, student=sources.student, alpha=alpha,
        temperature=settings.temperature, epochs=settings.epochs,
        batch_size=settings.batch_size, lr=settings.lr, seed=settings.seed,
        train_rows=train.rows, epoch_losses=losses, comparison=comparison,
    )  # fmt: skip


def _data(
    sources: Sources, settings: Settings, teacher: Teacher
) -> tuple[dataset.DataSet, dataset.DataSet]:
    specs = [export.InputSpec.parse(text, i) for i, text in enumerate(sources.inputs)]
    expected = [dataset.Expected.from_spec(s) for s in specs] or teacher.expected
    onnx_names = [e.name for e in teacher.expected or ()] if teacher.onnx else []
    if specs and onnx_names and [s.name for s in specs] != onnx_names:
        raise ModelToolError(
            f"--input names {[s.name for s in specs]} are not the inputs of {sources.teacher}: "
            f"{onnx_names}"
        )
    data = dataset.load_data_set(sources.data, expected, labels=sources.labels)
    if sources.eval_data is None:
        return dataset.split(data, settings.holdout, settings.seed)
    held = dataset.load_data_set(
        sources.eval_data, [dataset.Expected.from_spec(s) for s in data.specs()],
        labels=sources.labels,
    )  # fmt: skip
    return data, held


def _output_names(given: Sequence[str], module: Any, data: dataset.DataSet) -> list[str]:
    """``given`` (or the ONNX teacher's names), cut or filled to the module's output count."""
    count = len(export.run_torch(module, [v[:2] for v in data.inputs.values()]))
    names = list(given)[:count]
    return names + [f"output_{i}" if i else "output" for i in range(len(names), count)]


def _token_high(*sets: dataset.DataSet) -> int:
    """For random integer inputs (export's parity check): past the largest id in the data."""
    highs = [int(v.max()) + 1 for d in sets for v in d.inputs.values() if v.dtype.kind in "iu"]
    return max([2, *highs])


def _targets(
    teacher: Teacher, data: dataset.DataSet, batch: int, row_shape: tuple[int, ...]
) -> Callable[[np.ndarray], np.ndarray]:
    """Row indices -> teacher logits: computed once for the whole set when it fits in
    ``CACHE_BYTES``, else batch by batch as training asks."""
    columns = list(data.inputs.values())
    if data.rows * int(np.prod(row_shape)) * 4 > CACHE_BYTES:
        return lambda index: teacher.run([c[index] for c in columns])
    cached = np.concatenate(
        [teacher.run([c[i : i + batch] for c in columns]) for i in range(0, data.rows, batch)]
    )
    return lambda index: cached[index]


def _train(
    student: Any,
    data: dataset.DataSet,
    targets: Callable[[np.ndarray], np.ndarray],
    settings: Settings,
    alpha: float,
    out: Path,
    progress: TrainingProgress,
) -> list[float]:
    torch = need("torch")
    optimizer = torch.optim.Adam(student.parameters(), lr=settings.lr)
    order = np.random.default_rng([settings.seed, 1])
    columns = [torch.from_numpy(c) for c in data.inputs.values()]
    labels = torch.from_numpy(data.labels) if data.labels is not None and alpha > 0 else None
    steps = len(batches(np.arange(data.rows), settings.batch_size))
    progress.begin(settings.epochs, steps)
    losses: list[float] = []
    last_good: dict[str, Any] | None = None
    try:
        for epoch in range(1, settings.epochs + 1):
            student.train()
            total, seen = 0.0, 0
            for index in batches(order.permutation(data.rows), settings.batch_size):
                rows = torch.from_numpy(index)
                output = student(*[c[rows] for c in columns])
                logits = output[0] if isinstance(output, tuple | list) else output
                loss = distillation_loss(
                    logits, torch.from_numpy(targets(index)),
                    labels[rows] if labels is not None else None,
                    alpha=alpha, temperature=settings.temperature,
                )  # fmt: skip
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, seen = total + loss.item() * len(index), seen + len(index)
                progress.step(epoch, total / seen)
            losses.append(total / seen)
            last_good = {k: v.detach().clone() for k, v in student.state_dict().items()}
            progress.epoch_done(epoch, losses[-1])
    except KeyboardInterrupt:
        raise _interrupted(student, last_good, len(losses), settings.epochs, out) from None
    return losses


def _interrupted(
    student: Any, last_good: dict[str, Any] | None, done: int, epochs: int, out: Path
) -> InterruptedCommandError:
    if last_good is None:
        return InterruptedCommandError(
            "interrupted before the first epoch finished: no checkpoint written"
        )
    path = out.with_name(f"{out.stem}.epoch{done}{out.suffix or '.pt'}")
    student.load_state_dict(last_good)
    export.save_checkpoint(student.eval(), path)
    return InterruptedCommandError(
        f"interrupted during epoch {done + 1} of {epochs}: saved the student as of epoch "
        f"{done} to {path} (no report; --student-checkpoint {path} starts a run from it)"
    )

"""Two ONNX models side by side on the same inputs: size, latency, agreement.

The reports of ``distill`` (teacher vs student) and ``factorize`` (original vs factorised) come
from ``compare_models``; ``quantize`` times its two models with ``median_latencies_ms``. Latency
is measured with onnxruntime on the CPU, both sessions with the same thread settings, and the
runs interleaved (A B, then B A, ...). ``compare_models`` reports the fastest run of each model
(and the median beside it): other processes only ever add time, and on a busy machine two copies
of one model differ by up to 2x in their medians but by a few per cent in their fastest runs.
Reads the two files; writes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelyard_cli.models import compare
from modelyard_cli.models.export import ort_session
from modelyard_cli.models.onnx_model import ModelToolError, load, need


@dataclasses.dataclass(frozen=True, slots=True)
class Side:
    """One model of the pair, measured."""

    parameters: int
    onnx_bytes: int
    latency_ms: float  # the fastest of the interleaved runs
    latency_median_ms: float
    accuracy: float | None
    perplexity: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """``reference`` (teacher, original) and ``candidate`` (student, factorised) side by side."""

    reference: Side
    candidate: Side
    rows: int
    top1_agreement: float | None
    mean_kl: float | None
    max_abs_diff: float
    latency_rows: int
    latency_runs: int
    threads: int

    def as_dict(self) -> dict[str, Any]:
        ratios = {
            "parameter_ratio": self.candidate.parameters / max(self.reference.parameters, 1),
            "onnx_size_ratio": self.candidate.onnx_bytes / self.reference.onnx_bytes,
            "latency_ratio": self.candidate.latency_ms / self.reference.latency_ms,
        }
        return dataclasses.asdict(self) | ratios

    def lines(self, reference: str, candidate: str) -> list[str]:
        r, c, ratios = self.reference, self.candidate, self.as_dict()
        lines = [
            f"size: {reference} {r.parameters:,} parameters, {r.onnx_bytes / 1e3:.1f} kB ONNX -> "
            f"{candidate} {c.parameters:,} parameters, {c.onnx_bytes / 1e3:.1f} kB ONNX "
            f"({ratios['parameter_ratio']:.2f}x parameters, {ratios['onnx_size_ratio']:.2f}x "
            "bytes)",
            f"latency (onnxruntime CPU, {self.threads} thread(s), batch of {self.latency_rows}, "
            f"fastest of {self.latency_runs} interleaved runs): {r.latency_ms:.3f} ms -> "
            f"{c.latency_ms:.3f} ms ({ratios['latency_ratio']:.2f}x; medians "
            f"{r.latency_median_ms:.3f} -> {c.latency_median_ms:.3f} ms)",
            f"agreement on {self.rows} evaluation rows: max |diff| {self.max_abs_diff:.3g}"
            + compare.agreement_text(self.top1_agreement)
            + (f", mean KL({reference} || {candidate}) {self.mean_kl:.4g} nats"
               if self.mean_kl is not None else ""),
        ]  # fmt: skip
        if r.accuracy is not None and c.accuracy is not None:
            lines.append(f"accuracy on labels: {reference} {r.accuracy:.1%}, "
                         f"{candidate} {c.accuracy:.1%}")  # fmt: skip
        if r.perplexity is not None and c.perplexity is not None:
            lines.append(f"perplexity: {reference} {r.perplexity:.3f}, "
                         f"{candidate} {c.perplexity:.3f}")  # fmt: skip
        return lines


def interleaved_times_ms(calls: Sequence[Callable[[], object]], runs: int) -> list[list[float]]:
    """Wall times of each call, the calls interleaved, their order flipped every round."""
    for call in calls:
        call()  # warm-up: allocations, lazy initialisation
    times: list[list[float]] = [[] for _ in calls]
    order = list(range(len(calls)))
    for _ in range(runs):
        for i in order:
            started = time.perf_counter()
            calls[i]()
            times[i].append((time.perf_counter() - started) * 1000)
        order.reverse()
    return times


def median_latencies_ms(calls: Sequence[Callable[[], object]], runs: int = 30) -> list[float]:
    return [statistics.median(t) for t in interleaved_times_ms(calls, runs)]


def run_first_output(session: Any, feeds: Mapping[str, np.ndarray], batch: int = 256) -> np.ndarray:
    """The session's first output over all rows of ``feeds``, run ``batch`` rows at a time."""
    rows = len(next(iter(feeds.values())))
    parts = [
        session.run(None, {k: v[start : start + batch] for k, v in feeds.items()})[0]
        for start in range(0, rows, batch)
    ]
    return np.concatenate(parts).astype(np.float32)


def onnx_parameters(path: Path) -> int:
    """Elements of the model's floating-point initializers: its parameters, as ONNX stores them."""
    onnx = need("onnx")
    model = load(path)
    floating = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                onnx.TensorProto.BFLOAT16}  # fmt: skip
    return sum(
        int(np.prod(init.dims)) for init in model.graph.initializer if init.data_type in floating
    )


def compare_models(
    reference: Path,
    candidate: Path,
    *,
    feeds: Mapping[str, np.ndarray],
    labels: np.ndarray | None,
    parameters: tuple[int, int],
    threads: int,
    latency_rows: int = 32,
    latency_runs: int = 50,
) -> Comparison:
    """Run both ONNX models on ``feeds`` (the evaluation rows) and time them on the first rows."""
    sessions = [ort_session(reference, threads), ort_session(candidate, threads)]
    before, after = (run_first_output(s, feeds) for s in sessions)
    if labels is not None and labels.shape != before.shape[:-1]:
        raise ModelToolError(
            f"labels of shape {labels.shape} do not fit the model's output {before.shape}: "
            "one class index per row (or per position of a sequence)"
        )
    timed = {k: v[:latency_rows] for k, v in feeds.items()}
    times = interleaved_times_ms(
        [functools.partial(s.run, None, timed) for s in sessions], runs=latency_runs
    )
    targets = compare.next_token_targets(list(feeds.values()), before.shape, labels)

    def side(logits: np.ndarray, count: int, path: Path, latency: list[float]) -> Side:
        return Side(
            parameters=count,
            onnx_bytes=path.stat().st_size,
            latency_ms=min(latency),
            latency_median_ms=statistics.median(latency),
            accuracy=compare.accuracy(logits, labels) if labels is not None else None,
            perplexity=(compare.perplexity(logits[:, targets[0]], targets[1]) if targets else None),
        )

    return Comparison(
        reference=side(before, parameters[0], reference, times[0]),
        candidate=side(after, parameters[1], candidate, times[1]),
        rows=len(before),
        top1_agreement=compare.top1_agreement([before], [after]),
        mean_kl=compare.mean_kl(before, after) if before.shape[-1] > 1 else None,
        max_abs_diff=float(np.abs(before.astype(np.float64) - after).max()),
        latency_rows=len(next(iter(timed.values()))),
        latency_runs=latency_runs,
        threads=threads,
    )

"""``modelyard quantize``: int8 (dynamic or static) with onnxruntime's quantiser, or fp16 with
onnxconverter-common (inputs and outputs stay fp32), plus a report measured on this machine:
size before and after, agreement with the fp32 model on sample inputs, latency before and after
(the two models' runs interleaved).
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from modelyard_cli.models.compare import agreement_text, top1_agreement
from modelyard_cli.models.export import ort_session
from modelyard_cli.models.measure import median_latencies_ms
from modelyard_cli.models.onnx_model import ModelToolError, check_and_pin_ir, load, need

MODES: Final = ("int8-dynamic", "int8-static", "fp16")


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    mode: str
    size_before: int
    size_after: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float | None
    latency_before_ms: float
    latency_after_ms: float

    def lines(self) -> list[str]:
        agreement = agreement_text(self.top1_agreement)
        return [
            f"mode {self.mode}",
            f"size {self.size_before / 1e6:.3f} MB -> {self.size_after / 1e6:.3f} MB "
            f"({self.size_after / self.size_before:.2f}x)",
            f"vs fp32: max |diff| {self.max_abs_diff:.3g}, mean |diff| {self.mean_abs_diff:.3g}"
            + agreement,
            f"latency (batch of samples, median, this machine) {self.latency_before_ms:.3f} ms -> "
            f"{self.latency_after_ms:.3f} ms",
        ]


def sample_feeds(session: Any, calibration: Path | None, rows: int = 32) -> dict[str, np.ndarray]:
    """Inputs to compare and time on: the calibration file when given, else seeded random."""
    if calibration is not None:
        try:
            data = np.load(calibration)
        except Exception as e:
            raise ModelToolError(f"cannot read calibration data {calibration}: {e}") from e
        missing = [i.name for i in session.get_inputs() if i.name not in data]
        if missing:
            raise ModelToolError(f"{calibration} has no array for inputs {missing}")
        return {i.name: np.asarray(data[i.name]) for i in session.get_inputs()}
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in session.get_inputs():
        shape = [rows if not isinstance(d, int) or i == 0 else d for i, d in enumerate(spec.shape)]
        if "int" in spec.type:
            feeds[spec.name] = rng.integers(0, 16, size=shape).astype(np.int64)
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


class _Calibration:
    """onnxruntime's CalibrationDataReader over the rows of the calibration arrays."""

    def __init__(self, feeds: dict[str, np.ndarray]) -> None:
        rows = len(next(iter(feeds.values())))
        self._items: Iterator[dict[str, np.ndarray]] = iter(
            [{k: v[i : i + 1] for k, v in feeds.items()} for i in range(rows)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize(source: Path, out: Path, *, mode: str, calibration: Path | None) -> Report:
    if mode not in MODES:
        raise ModelToolError(f"--mode must be one of {', '.join(MODES)}")
    if mode == "int8-static" and calibration is None:
        raise ModelToolError("int8-static needs --calibration data.npz (one array per input)")
    load(source)  # a clear error for anything that is not ONNX
    out.parent.mkdir(parents=True, exist_ok=True)
    reference = ort_session(source)
    feeds = sample_feeds(reference, calibration)
    if mode == "fp16":
        _fp16(source, out)
    else:
        _int8(source, out, static=mode == "int8-static", feeds=feeds)
    check_and_pin_ir(out)
    quantized = ort_session(out)
    before, after = reference.run(None, feeds), quantized.run(None, feeds)
    diffs = [
        np.abs(a.astype(np.float64) - b.astype(np.float64))
        for a, b in zip(before, after, strict=True)
    ]
    top1 = top1_agreement(before, after)
    latencies = median_latencies_ms(
        [functools.partial(s.run, None, feeds) for s in (reference, quantized)]
    )
    return Report(
        mode=mode,
        size_before=source.stat().st_size,
        size_after=out.stat().st_size,
        max_abs_diff=max(float(d.max()) for d in diffs),
        mean_abs_diff=float(np.mean([d.mean() for d in diffs])),
        top1_agreement=top1,
        latency_before_ms=latencies[0],
        latency_after_ms=latencies[1],
    )


def _fp16(source: Path, out: Path) -> None:
    onnx = need("onnx")
    float16 = need("onnxconverter_common.float16")
    model = onnx.load(str(source))
    converted = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(out))


def _int8(source: Path, out: Path, *, static: bool, feeds: dict[str, np.ndarray]) -> None:
    quantization = need("onnxruntime.quantization", "runtime")
    shape_inference = need("onnxruntime.quantization.shape_inference", "runtime")
    with tempfile.TemporaryDirectory(prefix="modelyard-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            shape_inference.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        except Exception as e:
            raise ModelToolError(f"quantisation pre-processing failed: {e}") from e
        try:
            if static:
                quantization.quantize_static(
                    str(prepared), str(out), _Calibration(feeds),
                    quant_format=quantization.QuantFormat.QDQ,
                    activation_type=quantization.QuantType.QInt8,
                    weight_type=quantization.QuantType.QInt8,
                )  # fmt: skip
            else:
                quantization.quantize_dynamic(
                    str(prepared), str(out), weight_type=quantization.QuantType.QInt8
                )
        except Exception as e:
            raise ModelToolError(f"quantisation failed: {type(e).__name__}: {e}") from e

"""Judge one analysis check from what its queries returned. Pure: numbers in, verdict out.

A ``Reading`` is one query's answer: a number, nothing (an empty result), or an error (the
query failed or Prometheus could not be reached). Too few canary requests, no data or an error
make a check inconclusive: it never passes, and never counts as a failure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from modelyard_operator.api.v1alpha1 import (
    AnalysisMetric,
    CheckResult,
    CheckVerdict,
    CustomCheck,
    LatencyCheck,
    seconds,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    value: float | None = None  # None: the query returned no sample (or NaN)
    error: str = ""  # the query failed; the message says why

    @classmethod
    def of(cls, values: Sequence[float]) -> Reading:
        finite = [v for v in values if not math.isnan(v)]
        if len(finite) > 1:
            return cls(error=f"the query returned {len(finite)} series, not one number")
        return cls(value=finite[0] if finite else None)


def _inconclusive(metric: str, message: str, bound: str, value: float | None = None) -> CheckResult:
    return CheckResult(metric=metric, result="inconclusive", value=value, bound=bound,
                       message=message)  # fmt: skip


def _samples_problem(count: Reading, min_samples: int, track: str) -> str:
    if count.error:
        return count.error
    seen = count.value or 0.0
    if seen < min_samples:
        return f"{seen:.0f} {track} requests in the window, fewer than minSampleCount {min_samples}"
    return ""


def judge_error_rate(
    metric: AnalysisMetric, *, rate: Reading, count: Reading, min_samples: int
) -> CheckResult:
    assert metric.error_rate is not None
    bound = f"<= {metric.error_rate.max:g}"
    problem = _samples_problem(count, min_samples, "canary") or rate.error
    if problem or rate.value is None:
        return _inconclusive(metric.name, problem or "no error-rate data", bound)
    ok = rate.value <= metric.error_rate.max
    message = f"{rate.value:.2%} of the canary's answers were 5xx"
    return CheckResult(metric=metric.name, result="pass" if ok else "fail", value=rate.value,
                       bound=bound, message=message)  # fmt: skip


def latency_bound(check: LatencyCheck, stable: float | None) -> str:
    parts = []
    if check.max is not None:
        parts.append(f"<= {seconds(check.max):g} s")
    if check.max_relative_to_stable is not None:
        of = f" ({stable:.4g} s)" if stable is not None else ""
        parts.append(f"<= {check.max_relative_to_stable:g} x stable{of}")
    return " and ".join(parts)


def judge_latency(
    metric: AnalysisMetric,
    *,
    canary: Reading,
    canary_count: Reading,
    stable: Reading | None,
    stable_count: Reading | None,
    min_samples: int,
) -> CheckResult:
    check = metric.latency
    assert check is not None
    relative = check.max_relative_to_stable
    bound = latency_bound(check, stable.value if stable else None)
    name = f"p{check.quantile * 100:g}"
    problem = _samples_problem(canary_count, min_samples, "canary") or canary.error
    if not problem and relative is not None:
        assert stable is not None
        assert stable_count is not None
        problem = _samples_problem(stable_count, min_samples, "stable") or stable.error
        if not problem and stable.value is None:
            problem = "no stable latency data"
    if problem or canary.value is None:
        return _inconclusive(metric.name, problem or "no canary latency data", bound)
    failures = []
    if check.max is not None and canary.value > seconds(check.max):
        failures.append(f"above {check.max}")
    if (
        relative is not None
        and stable is not None
        and stable.value is not None
        and canary.value > relative * stable.value
    ):
        failures.append(f"{canary.value / stable.value:.2f} x the stable's {name}")
    message = f"canary {name} {canary.value * 1000:.1f} ms"
    if failures:
        message += ": " + ", ".join(failures)
    return CheckResult(metric=metric.name, result="fail" if failures else "pass",
                       value=canary.value, bound=bound, message=message)  # fmt: skip


def custom_bound(check: CustomCheck) -> str:
    if check.min is not None and check.max is not None:
        return f"{check.min:g}..{check.max:g}"
    return f">= {check.min:g}" if check.min is not None else f"<= {check.max:g}"


def judge_custom(metric: AnalysisMetric, *, reading: Reading) -> CheckResult:
    check = metric.custom
    assert check is not None
    bound = custom_bound(check)
    if reading.error or reading.value is None:
        return _inconclusive(metric.name, reading.error or "the query returned no data", bound)
    value = reading.value
    ok = (check.min is None or value >= check.min) and (check.max is None or value <= check.max)
    return CheckResult(metric=metric.name, result="pass" if ok else "fail", value=value,
                       bound=bound, message=f"the query returned {value:.4g}")  # fmt: skip


def overall(checks: Sequence[CheckResult]) -> CheckVerdict:
    """fail if any check failed, else inconclusive if any was, else pass."""
    results = {check.result for check in checks}
    if "fail" in results:
        return "fail"
    return "inconclusive" if "inconclusive" in results or not checks else "pass"

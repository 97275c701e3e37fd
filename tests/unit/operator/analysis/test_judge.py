"""Each check's verdict from its readings: pass, fail, or inconclusive (never counted)."""

from __future__ import annotations

import math

import pytest

from modelyard_operator.analysis.judge import (
    Reading,
    judge_custom,
    judge_error_rate,
    judge_latency,
    overall,
)
from modelyard_operator.api.v1alpha1 import AnalysisMetric, CheckResult


def metric(**check: object) -> AnalysisMetric:
    return AnalysisMetric.model_validate({"name": "m", **check})


@pytest.mark.parametrize(
    ("rate", "count", "result"),
    [
        (0.005, 100, "pass"),
        (0.02, 100, "fail"),
        (0.5, 10, "inconclusive"),
        (None, 100, "inconclusive"),
    ],
)
def test_error_rate(rate: float | None, count: float, result: str) -> None:
    check = judge_error_rate(
        metric(errorRate={"max": 0.01}), rate=Reading(rate), count=Reading(count), min_samples=50
    )
    assert check.result == result
    assert check.bound == "<= 0.01"
    if result == "inconclusive" and count < 50:
        assert "fewer than minSampleCount 50" in check.message


def test_an_unreachable_prometheus_is_inconclusive_with_the_reason() -> None:
    check = judge_error_rate(
        metric(errorRate={"max": 0.01}), rate=Reading(error="Prometheus unreachable: refused"),
        count=Reading(error="Prometheus unreachable: refused"), min_samples=1,
    )  # fmt: skip
    assert (check.result, check.message) == ("inconclusive", "Prometheus unreachable: refused")


@pytest.mark.parametrize(
    ("canary", "stable", "result", "words"),
    [
        (0.010, 0.010, "pass", "10.0 ms"),
        (0.300, 0.010, "fail", "above 250ms"),
        (0.020, 0.010, "fail", "2.00 x the stable's p99"),
        (0.014, 0.010, "pass", "14.0 ms"),
    ],
)
def test_latency_absolute_and_relative(
    canary: float, stable: float, result: str, words: str
) -> None:
    check = judge_latency(
        metric(latency={"quantile": 0.99, "max": "250ms", "maxRelativeToStable": 1.5}),
        canary=Reading(canary), canary_count=Reading(100.0),
        stable=Reading(stable), stable_count=Reading(100.0), min_samples=50,
    )  # fmt: skip
    assert check.result == result
    assert words in check.message
    assert check.bound == "<= 0.25 s and <= 1.5 x stable (0.01 s)"


def test_relative_latency_needs_stable_samples_too() -> None:
    check = judge_latency(
        metric(latency={"maxRelativeToStable": 1.5}),
        canary=Reading(0.01), canary_count=Reading(100.0),
        stable=Reading(0.01), stable_count=Reading(3.0), min_samples=50,
    )  # fmt: skip
    assert check.result == "inconclusive"
    assert "3 stable requests" in check.message


@pytest.mark.parametrize(
    ("bounds", "value", "result"),
    [({"min": 0.9}, 0.95, "pass"), ({"min": 0.9}, 0.5, "fail"), ({"min": 1, "max": 2}, 3, "fail"),
     ({"max": 2}, None, "inconclusive")],
)  # fmt: skip
def test_custom_bounds(bounds: dict[str, float], value: float | None, result: str) -> None:
    check = judge_custom(metric(custom={"query": "up", **bounds}), reading=Reading(value))
    assert check.result == result


def test_readings_ignore_nan_and_refuse_several_series() -> None:
    assert Reading.of([math.nan]).value is None
    assert Reading.of([1.0, math.nan]).value == 1.0
    assert "2 series" in Reading.of([1.0, 2.0]).error


@pytest.mark.parametrize(
    ("results", "verdict"),
    [(["pass", "pass"], "pass"), (["pass", "inconclusive"], "inconclusive"),
     (["inconclusive", "fail"], "fail"), ([], "inconclusive")],
)  # fmt: skip
def test_overall(results: list[str], verdict: str) -> None:
    checks = [CheckResult(metric=str(i), result=r) for i, r in enumerate(results)]  # type: ignore[arg-type]
    assert overall(checks) == verdict

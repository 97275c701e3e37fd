"""One analysis of a canary: every check's queries, run at once, judged into a status entry.

Called by the handlers when ``reconcile.rollout.analysis_due`` says so; talks to metrics only
through a ``MetricsSource``. Without a source (no Prometheus configured) every check is
inconclusive, so the rollout holds and never promotes.
"""

from __future__ import annotations

import asyncio
import datetime

from modelyard_operator.analysis import judge, queries
from modelyard_operator.analysis.judge import Reading
from modelyard_operator.analysis.source import MetricsSource, MetricsUnavailableError
from modelyard_operator.api.timefmt import rfc3339
from modelyard_operator.api.v1alpha1 import AnalysisMetric, AnalysisStatus, CheckResult

NO_SOURCE = "no Prometheus is configured (the operator's prometheusUrl)"


async def _read(source: MetricsSource | None, promql: str) -> Reading:
    if source is None:
        return Reading(error=NO_SOURCE)
    try:
        return Reading.of(await source.query(promql))
    except MetricsUnavailableError as e:
        return Reading(error=str(e))


async def _check(
    metric: AnalysisMetric, window: queries.Window, source: MetricsSource | None, min_samples: int
) -> CheckResult:
    if metric.error_rate is not None:
        rate, count = await asyncio.gather(
            _read(source, queries.error_rate(window)),
            _read(source, queries.request_count(window, "canary")),
        )
        return judge.judge_error_rate(metric, rate=rate, count=count, min_samples=min_samples)
    if metric.latency is not None:
        q = metric.latency.quantile
        relative = metric.latency.max_relative_to_stable is not None
        reads = [
            _read(source, queries.latency(window, "canary", q)),
            _read(source, queries.request_count(window, "canary")),
        ]
        if relative:
            reads += [
                _read(source, queries.latency(window, "stable", q)),
                _read(source, queries.request_count(window, "stable")),
            ]
        got = await asyncio.gather(*reads)
        return judge.judge_latency(
            metric, canary=got[0], canary_count=got[1],
            stable=got[2] if relative else None, stable_count=got[3] if relative else None,
            min_samples=min_samples,
        )  # fmt: skip
    assert metric.custom is not None
    reading = await _read(source, queries.custom(metric.custom.query, window))
    return judge.judge_custom(metric, reading=reading)


async def analyse(
    metrics: list[AnalysisMetric],
    window: queries.Window,
    *,
    source: MetricsSource | None,
    min_samples: int,
    now: datetime.datetime,
) -> AnalysisStatus:
    """Run every check; the verdict is fail if any failed, else inconclusive if any was."""
    checks = await asyncio.gather(*(_check(m, window, source, min_samples) for m in metrics))
    return AnalysisStatus(time=rfc3339(now), result=judge.overall(checks), checks=list(checks))

"""One analysis through a ``MetricsSource``: each check's queries, and the verdict; against a
fake source here and a real Prometheus HTTP API shape (``PrometheusSource``) over aiohttp."""

from __future__ import annotations

import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from modelyard_operator.analysis import queries
from modelyard_operator.analysis.prometheus import PrometheusSource
from modelyard_operator.analysis.run import NO_SOURCE, analyse
from modelyard_operator.analysis.source import MetricsUnavailableError
from modelyard_operator.api.v1alpha1 import AnalysisMetric

W = queries.Window(namespace="ns", name="m", canary_revision="c", stable_revision="s",
                   interval="10s")  # fmt: skip
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
METRICS = [
    AnalysisMetric.model_validate({"name": "errors", "errorRate": {"max": 0.01}}),
    AnalysisMetric.model_validate({"name": "p99", "latency": {"maxRelativeToStable": 1.5}}),
]


class FakeSource:
    """Answers by the query's shape; records every query."""

    def __init__(self, answers: dict[str, list[float]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def query(self, promql: str) -> list[float]:
        self.asked.append(promql)
        for fragment, values in self.answers.items():
            if fragment in promql:
                return values
        raise MetricsUnavailableError(f"no answer for {promql}")


async def test_a_slow_canary_fails_the_latency_check_only() -> None:
    source = FakeSource({
        'code=~"5.."': [0.0], "increase": [500.0],
        'track="canary"}[10s])))': [0.040], 'track="stable"}[10s])))': [0.010],
    })  # fmt: skip
    result = await analyse(METRICS, W, source=source, min_samples=50, now=NOW)
    assert result.result == "fail"
    assert [(c.metric, c.result) for c in result.checks] == [("errors", "pass"), ("p99", "fail")]
    assert len(source.asked) == 6
    assert result.time == "2026-01-01T00:00:00Z"


async def test_without_a_source_every_check_is_inconclusive() -> None:
    result = await analyse(METRICS, W, source=None, min_samples=50, now=NOW)
    assert result.result == "inconclusive"
    assert {c.message for c in result.checks} == {NO_SOURCE}


def prometheus_app(reply: Any, status: int = 200) -> web.Application:
    async def query(request: web.Request) -> web.Response:
        assert request.query["query"]
        return web.json_response(reply, status=status)

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    return app


@pytest.mark.parametrize(
    ("reply", "values"),
    [
        ({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1, "0.25"]}]}}, [0.25]),
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, []),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "NaN"]}}, ["nan"]),
    ],
)  # fmt: skip
async def test_prometheus_source_reads_vectors_and_scalars(reply: Any, values: list[Any]) -> None:
    async with TestServer(prometheus_app(reply)) as server, aiohttp.ClientSession() as session:
        got = await PrometheusSource(session, str(server.make_url("/"))).query("up")
    assert [str(v) for v in got] == [str(float(v)) for v in values]


@pytest.mark.parametrize(
    ("reply", "status", "words"),
    [
        ({"status": "error", "error": "parse error at char 3"}, 400, "parse error at char 3"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, 200, "matrix"),
        ("not json at all", 200, "Prometheus error"),
    ],
)
async def test_prometheus_errors_are_metrics_unavailable(
    reply: Any, status: int, words: str
) -> None:
    async with TestServer(prometheus_app(reply, status)) as server, aiohttp.ClientSession() as s:
        with pytest.raises(MetricsUnavailableError, match=words):
            await PrometheusSource(s, str(server.make_url("/"))).query("up")


async def test_an_unreachable_prometheus_is_metrics_unavailable() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(MetricsUnavailableError, match="unreachable"):
            await PrometheusSource(session, "http://127.0.0.1:9").query("up")

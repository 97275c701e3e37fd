"""Every dashboard query, variables filled in, returns data from a real Prometheus scraping real
runtime and operator processes; the alert rules load and evaluate there.

The setup (``hack.grafana.live``): a tier C cluster with Prometheus, the operator as its
ServiceAccount (scraped as job ``modelyard-operator``) running its own canary rollouts of a
ModelDeployment whose kwok pods are served by ``modelyard-runtime`` processes on the pods' IPs
(a v2 canary aborted, a v3 canary held at its step), and client traffic with 4xx, 5xx and 429s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hack import alerts, dashboards
from hack.grafana import preview, queries
from hack.grafana.live import (
    NAMESPACE,
    VARIABLES,
    LiveSetup,
    label_values,
    load,
    poll,
    query,
    query_range,
    rule_groups,
    running,
)

pytestmark = pytest.mark.cluster

DOCUMENTS = dashboards.documents()
QUERIES = [q for document in DOCUMENTS.values() for q in queries.panel_queries(document)]
RATE_INTERVAL = "1m"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSetup]:
    with running(tmp_path_factory.mktemp("dashboards-live")) as setup, load(setup):
        # Wait until Prometheus has seen every kind of answer the panels show.
        codes = {"200", "400", "404", "429", "504"}

        def every_code_scraped() -> bool:
            found = query(setup.prometheus, "sum by (code) (modelyard_requests_total)")
            return codes <= {sample["metric"]["code"] for sample in found}

        poll(every_code_scraped, timeout=180, what=f"codes {sorted(codes)} in Prometheus")
        yield setup


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def settled(
    live: LiveSetup, expr: str, ok: Callable[[list[dict[str, Any]]], bool], timeout: float = 90
) -> list[dict[str, Any]]:
    """The result of ``expr`` once ``ok`` accepts it (a rate needs two scrapes of a new series)."""
    deadline = time.monotonic() + timeout
    while not ok(found := query(live.prometheus, expr)):
        assert time.monotonic() < deadline, f"{expr}: {found} after {timeout:.0f} s"
        time.sleep(1)  # polling Prometheus with a deadline
    return found


def run(live: LiveSetup, item: queries.PanelQuery) -> list[dict[str, Any]]:
    """A panel's query now; an annotation's over the last 15 minutes, as Grafana runs it over
    the dashboard's range (its points mark when something happened)."""
    expr = queries.substitute(item.expr, VARIABLES, rate_interval=RATE_INTERVAL, range_="10m")
    if not item.panel.startswith("annotation: "):
        return query(live.prometheus, expr)
    end = time.time()
    series = query_range(live.prometheus, expr, start=end - 900, end=end, step=15)
    return [{"metric": s["metric"], "value": s["values"][-1]} for s in series if s["values"]]


def test_variables_list_the_live_model(live: LiveSetup) -> None:
    expected = {
        "namespace": {NAMESPACE},
        "model": {"iris"},
        "modeldeployment": {"iris"},
        "version": {"v1", "v3"},  # the aborted v2 canary may never have been scraped
        "track": {"stable", "canary"},
    }
    for document in DOCUMENTS.values():
        for variable, text in queries.variable_queries(document).items():
            series, label = queries.parse_label_values(text)
            match = queries.substitute(series, {**VARIABLES, "version": ".*", "track": ".*"})
            found = set(label_values(live.prometheus, label, match))
            assert expected[variable] <= found, (document["uid"], variable, found)


@pytest.mark.parametrize("item", QUERIES, ids=lambda q: q.name)
def test_every_panel_query_returns_data(live: LiveSetup, item: queries.PanelQuery) -> None:
    deadline = time.monotonic() + 90
    while not finite(found := run(live, item)):
        assert time.monotonic() < deadline, f"no finite value for {item.name} in 90 s: {found}"
        time.sleep(1)  # polling Prometheus with a deadline


def test_the_live_data_shows_the_canary_apart(live: LiveSetup) -> None:
    """The canary's deadline and queue make it fail where the stable does not, as drawn."""
    failing = 'sum by (track) (rate(modelyard_requests_total{code=~"5..|429"}[2m])) > 0'
    found = settled(live, failing, bool)
    assert {sample["metric"]["track"] for sample in found} == {"canary"}
    rejected = 'sum by (reason) (increase(modelyard_rejected_requests_total{track="canary"}[5m]))'
    expected = {"queue_full", "timeout"}

    def reasons(result: list[dict[str, Any]]) -> set[str]:
        return {sample["metric"]["reason"] for sample in result}

    settled(live, f"{rejected} > 0", lambda result: expected <= reasons(result))


def test_alert_rules_load_and_evaluate_on_live_series(live: LiveSetup) -> None:
    expected = {group.name for group in alerts.groups()}
    rules: list[dict[str, Any]] = []

    def evaluated() -> bool:
        groups = rule_groups(live.prometheus)
        rules[:] = [rule for group in groups for rule in group["rules"]]
        names = {group["name"] for group in groups}
        return names == expected and all(r.get("lastEvaluation", "").startswith("2") and
                                         r["health"] == "ok" for r in rules)  # fmt: skip

    deadline = time.monotonic() + 60
    while not evaluated():
        assert time.monotonic() < deadline, f"not every rule evaluated and healthy: {rules}"
        time.sleep(1)  # polling Prometheus with a deadline
    record = "namespace_model:modelyard_requests_errors:ratio_rate5m"
    recorded = settled(live, f'{record}{{namespace="{NAMESPACE}"}} > 0', bool)
    assert [s["metric"]["model"] for s in recorded] == ["iris"]  # the canary's 504s and 429s
    # The scrape jobs are the ones the alerts select: nothing says they are down.
    down = query(live.prometheus, 'ALERTS{alertname=~"ModelyardOperatorDown|.*TargetDown"}')
    assert down == []


def test_previews_draw_every_panel_from_the_live_queries(live: LiveSetup, tmp_path: Path) -> None:
    paths = preview.render(live.prometheus, DOCUMENTS, VARIABLES, out=tmp_path, minutes=2)
    assert sorted(path.name for path in paths) == ["rollouts.png", "serving.png"]
    for path in paths:
        assert path.read_bytes().startswith(b"\x89PNG")
        assert path.stat().st_size < 400 * 1024

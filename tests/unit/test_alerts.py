"""The alert and recording rules: current, one source for both formats, every alert annotated and
linked to its runbook section, every expression valid PromQL over the contract's series, and
every alert covered by a promtool unit test that fires it and one that does not.

promtool itself runs in ``tests/integration/test_promtool.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from hack import alerts
from modelyard_runtime.metrics import LATENCY_BUCKETS
from tests.support.series import known_series, series_names

RUNBOOKS = alerts.ROOT / "docs" / "runbooks.md"
UNIT_TESTS = sorted((alerts.ROOT / "deploy" / "prometheus" / "tests").glob("*.yaml"))
ALERTS = alerts.alerts()


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((alerts.ROOT / alerts.RULES_FILE).read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def expectations() -> dict[str, dict[str, int]]:
    """How often each alert is expected firing and expected silent in the promtool tests."""
    counts: dict[str, dict[str, int]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test") or []:
                kind = "firing" if case.get("exp_alerts") else "silent"
                entry = counts.setdefault(case["alertname"], {"firing": 0, "silent": 0})
                entry[kind] += 1
    return counts


@pytest.mark.parametrize("path", sorted(alerts.outputs()), ids=str)
def test_every_committed_file_matches_the_source(path: Path) -> None:
    assert (alerts.ROOT / path).read_text() == alerts.outputs()[path], f"{path}: make alerts"


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    assert alerts.main(["--write", "--root", str(tmp_path)]) == 0
    assert alerts.main(["--check", "--root", str(tmp_path)]) == 0
    edited = tmp_path / alerts.PROMETHEUS_RULE_FILE
    edited.write_text(edited.read_text().replace("for: 5m", "for: 1m"))
    assert alerts.main(["--check", "--root", str(tmp_path)]) == 1


def test_the_prometheus_rule_carries_the_same_groups() -> None:
    plain = yaml.safe_load((alerts.ROOT / alerts.RULES_FILE).read_text())
    crd = yaml.safe_load((alerts.ROOT / alerts.PROMETHEUS_RULE_FILE).read_text())
    assert crd["apiVersion"] == "monitoring.coreos.com/v1"
    assert crd["kind"] == "PrometheusRule"
    assert crd["spec"] == plain


def test_names_are_unique_and_prefixed() -> None:
    names = [alert.name for alert in ALERTS]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"Modelyard[A-Z][A-Za-z]+", name) for name in names)
    records = [rule["record"] for rule in rules() if "record" in rule]
    assert all(re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z_0-9]+", name) for name in records)


@pytest.mark.parametrize("rule", [r for r in rules() if "alert" in r], ids=lambda r: r["alert"])
def test_every_alert_is_annotated_and_links_its_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "{{" not in annotations["summary"], "the summary is a static headline"
    url = annotations["runbook_url"]
    assert url.startswith(alerts.RUNBOOK_URL + "#")
    anchor = url.split("#", 1)[1]
    assert anchor == rule["alert"].lower()
    assert anchor in anchors(RUNBOOKS.read_text()), f"docs/runbooks.md has no #{anchor}"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert") or r["record"])
def test_every_expression_parses_and_reads_contract_series(rule: dict[str, Any]) -> None:
    promql_parser.parse(rule["expr"])
    recorded = {r["record"] for r in rules() if "record" in r}
    names = series_names(rule["expr"])
    assert names, "an expression without any series"
    assert names <= known_series() | recorded, names - known_series() - recorded


def test_a_broken_expression_fails_the_parse() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum(rate(modelyard_requests_total[5m])")


def test_the_latency_slo_is_an_exact_bucket_edge() -> None:
    assert float(alerts.LATENCY_THRESHOLD) in LATENCY_BUCKETS


def test_burn_rates_follow_the_workbook() -> None:
    assert alerts.FAST_BURN == (("1h", "5m", 14.4), ("6h", "30m", 6.0))
    assert alerts.SLOW_BURN == (("1d", "2h", 3.0), ("3d", "6h", 1.0))
    windows = {w for pair in alerts.FAST_BURN + alerts.SLOW_BURN for w in pair[:2]}
    assert windows == set(alerts.WINDOWS)
    severities = {alert.name: alert.severity for alert in ALERTS}
    assert severities["ModelyardErrorBudgetFastBurn"] == "critical"
    assert severities["ModelyardErrorBudgetSlowBurn"] == "warning"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_every_alert_has_a_firing_and_a_silent_unit_test(alert: alerts.Alert) -> None:
    counts = expectations().get(alert.name, {"firing": 0, "silent": 0})
    assert counts["firing"] >= 1, f"no promtool test fires {alert.name}"
    assert counts["silent"] >= 1, f"no promtool test expects {alert.name} silent"


def test_unit_tests_read_the_plain_rule_file() -> None:
    assert UNIT_TESTS
    for path in UNIT_TESTS:
        document = yaml.safe_load(path.read_text())
        files = [(path.parent / name).resolve() for name in document["rule_files"]]
        assert files == [(alerts.ROOT / alerts.RULES_FILE).resolve()], path

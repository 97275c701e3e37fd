"""The generated dashboards: current, valid for Grafana's own schema, laid out on the grid, with
``${datasource}`` everywhere, and every query valid PromQL over the contract's metric names.

No Grafana server is available (docs/observability.md): the JSON is round-tripped through
grafana-foundation-sdk's model and every query is parsed by ``promql-parser``. The live test
(``tests/integration/cluster/test_dashboards_live.py``) runs them against a real Prometheus.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from hack import dashboards
from hack.grafana import queries
from hack.grafana.rollouts import PHASES
from modelyard_operator.metrics import PHASES as OPERATOR_PHASES
from tests.support.series import known_series, series_names

DOCUMENTS = dashboards.documents()
NAMES = sorted(DOCUMENTS)
EXAMPLE_VALUES = {
    "datasource": "prometheus",
    "namespace": "(team-a|team-b)",
    "model": "iris",
    "version": ".*",
    "track": "stable",
    "modeldeployment": "iris",
}


def all_queries() -> list[queries.PanelQuery]:
    return [query for name in NAMES for query in queries.panel_queries(DOCUMENTS[name])]


def walk(node: Any) -> Any:
    """Every (key, value) pair of a JSON document, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


@pytest.mark.parametrize("path", sorted(dashboards.outputs()), ids=str)
def test_every_committed_file_matches_the_generator(path: Path) -> None:
    expected = dashboards.outputs()[path]
    assert (dashboards.ROOT / path).read_text() == expected, f"{path} is stale: make dashboards"


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    assert dashboards.main(["--write", "--root", str(tmp_path)]) == 0
    assert dashboards.main(["--check", "--root", str(tmp_path)]) == 0
    stale = tmp_path / "dashboards" / "serving.json"
    stale.write_text(stale.read_text().replace("Requests/s", "Requests per second"))
    assert dashboards.main(["--check", "--root", str(tmp_path)]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trips_through_the_sdk_model(name: str) -> None:
    document = DOCUMENTS[name]
    parsed = Dashboard.from_json(document)
    again = json.loads(JSONEncoder(sort_keys=True).encode(parsed))
    assert again == {key: value for key, value in document.items() if key != "id"}
    assert parsed.schema_version >= 41  # Grafana 11.6 / 12


@pytest.mark.parametrize("name", NAMES)
def test_identity_is_stable_and_provisionable(name: str) -> None:
    document = DOCUMENTS[name]
    assert document["id"] is None
    assert document["uid"] == f"modelyard-{name}"
    text = json.dumps(document)
    assert "__inputs" not in text
    assert "${DS_" not in text


def test_uids_are_unique_across_dashboards() -> None:
    uids = [DOCUMENTS[name]["uid"] for name in NAMES]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", NAMES)
def test_panel_ids_are_unique_and_positive(name: str) -> None:
    ids = [panel["id"] for panel in queries.panels(DOCUMENTS[name])]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", NAMES)
def test_panels_fit_the_grid_and_do_not_overlap(name: str) -> None:
    boxes = []
    for panel in queries.panels(DOCUMENTS[name]):
        pos = panel["gridPos"]
        assert min(pos["x"], pos["y"]) >= 0, panel["title"]
        assert min(pos["w"], pos["h"]) > 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']} is wider than the grid"
        boxes.append((panel["title"], pos))
    for (a, p), (b, q) in itertools.combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"{a!r} overlaps {b!r}"


@pytest.mark.parametrize("name", NAMES)
def test_every_datasource_is_the_template_variable(name: str) -> None:
    refs = [value for key, value in walk(DOCUMENTS[name]) if key == "datasource"]
    assert refs, "no datasource at all"
    for ref in refs:
        assert ref == {"type": "prometheus", "uid": "${datasource}"}, ref
    variables = DOCUMENTS[name]["templating"]["list"]
    assert variables[0]["name"] == "datasource"
    assert variables[0]["type"] == "datasource"
    assert variables[0]["query"] == "prometheus"


@pytest.mark.parametrize("name", NAMES)
def test_every_panel_has_a_description_and_a_unit(name: str) -> None:
    for panel in queries.panels(DOCUMENTS[name]):
        if panel["type"] == "row":
            continue
        assert panel.get("description"), panel["title"]
        assert panel.get("targets"), panel["title"]
        if panel["type"] in {"timeseries", "stat"}:
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        if panel["type"] == "heatmap":
            assert panel["options"]["yAxis"]["unit"] == "s", panel["title"]


@pytest.mark.parametrize("name", NAMES)
def test_variables_filter_by_the_contract_labels(name: str) -> None:
    expected = {
        "serving": {"datasource", "namespace", "model", "version", "track"},
        "rollouts": {"datasource", "namespace", "modeldeployment", "version"},
    }[name]
    assert queries.variable_names(DOCUMENTS[name]) == expected
    for variable, query in queries.variable_queries(DOCUMENTS[name]).items():
        series, label = queries.parse_label_values(query)
        assert label == {"modeldeployment": "name"}.get(variable, variable)
        promql_parser.parse(queries.substitute(series, EXAMPLE_VALUES))


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.name)
def test_every_query_parses_as_promql(query: queries.PanelQuery) -> None:
    defined = queries.variable_names(DOCUMENTS[query.dashboard.removeprefix("modelyard-")])
    assert queries.used_variables(query.expr) - set(queries.BUILTINS) <= defined
    promql_parser.parse(queries.substitute(query.expr, EXAMPLE_VALUES))


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.name)
def test_every_query_reads_only_series_of_the_contract(query: queries.PanelQuery) -> None:
    names = series_names(queries.substitute(query.expr, EXAMPLE_VALUES))
    assert names, "a query without any series"
    assert names <= known_series(), names - known_series()


def test_a_broken_query_fails_the_parse() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse(queries.substitute("sum(rate(x[$__rate_interval])", {}))


def test_substitution_fills_every_variable_form() -> None:
    expr = 'rate(x{a=~"$a", b=~"${b}", c=~"${c:regex}", d=~"[[d]]"}[$__rate_interval])'
    out = queries.substitute(expr, {"a": "1", "b": "2", "c": "3", "d": "4"}, rate_interval="2m")
    assert out == 'rate(x{a=~"1", b=~"2", c=~"3", d=~"4"}[2m])'
    with pytest.raises(KeyError):
        queries.substitute("x{a=~'$unknown'}", {})


def test_the_phase_timeline_maps_every_phase_the_operator_reports() -> None:
    assert set(OPERATOR_PHASES) <= set(PHASES)
    (timeline,) = (p for p in queries.panels(DOCUMENTS["rollouts"]) if p["title"] == "Phase")
    mapped = timeline["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {entry["text"] for entry in mapped.values()} == set(PHASES)


def test_the_configmap_carries_both_dashboards_for_the_sidecar() -> None:
    text = (dashboards.ROOT / dashboards.CONFIGMAP_FILE).read_text()
    manifest = yaml.safe_load(text)
    assert manifest["kind"] == "ConfigMap"
    assert manifest["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert len(text.encode()) < 1024 * 1024  # a ConfigMap's limit
    for name in NAMES:
        assert json.loads(manifest["data"][f"modelyard-{name}.json"]) == DOCUMENTS[name]

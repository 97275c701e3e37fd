"""What `make chart` writes into the Helm chart is current: the copied RBAC rules, dashboards,
alert and adapter rules, the values schema's operator settings and the README. And the check
notices each kind of drift."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from hack import chart
from hack.chart import CHART, CHART_MANAGED, COPIES, ROOT, camel, documented_values, drift
from modelyard_operator.config import OperatorConfig

HAND_WRITTEN = ("Chart.yaml", "values.yaml", "values.schema.json", "README.md.tmpl")


def test_every_generated_file_in_the_chart_is_current() -> None:
    assert drift(ROOT) == [], "run `make chart`"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the sources and the chart's hand-written files, then `make chart` on it."""
    for pattern, _ in COPIES:
        for source in ROOT.glob(pattern):
            target = tmp_path / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    for name in HAND_WRITTEN:
        (tmp_path / CHART).mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / CHART / name, tmp_path / CHART / name)
    assert chart.main(["--check", "--root", str(tmp_path)]) == 1  # nothing written yet
    assert chart.main(["--write", "--root", str(tmp_path)]) == 0
    assert chart.main(["--check", "--root", str(tmp_path)]) == 0
    return tmp_path


def test_check_reports_an_edited_copy(repo: Path) -> None:
    copy = repo / CHART / "files" / "rbac" / "clusterrole.yaml"
    copy.write_text(copy.read_text().replace("verbs: [get]", "verbs: [get, list]"))
    assert drift(repo) == [f"{CHART}/files/rbac/clusterrole.yaml is stale or missing"]


def test_check_reports_a_copy_whose_source_is_gone_and_write_removes_it(repo: Path) -> None:
    (repo / CHART / "files" / "dashboards" / "retired.json").write_text("{}")
    assert drift(repo) == [f"{CHART}/files/dashboards/retired.json has no source any more"]
    chart.write(repo)
    assert drift(repo) == []
    assert not (repo / CHART / "files" / "dashboards" / "retired.json").exists()


def test_a_new_dashboard_source_is_picked_up(repo: Path) -> None:
    (repo / "dashboards" / "capacity.json").write_text('{"title": "x"}\n')
    assert drift(repo) == [f"{CHART}/files/dashboards/capacity.json is stale or missing"]


def test_check_reports_a_readme_behind_the_values_comments(repo: Path) -> None:
    values = repo / CHART / "values.yaml"
    values.write_text(values.read_text().replace("# -- Operator replicas.", "# -- Replicas."))
    assert drift(repo) == [f"{CHART}/README.md is stale or missing"]


def test_a_missing_source_is_an_error_not_an_empty_chart(repo: Path) -> None:
    (repo / "deploy" / "prometheus" / "modelyard-alerts.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"modelyard-alerts\.yaml"):
        drift(repo)


def test_helm_docs_comments_document_nested_keys_over_several_lines() -> None:
    text = (
        "# a file comment, not documentation\n"
        "image:\n"
        "  # -- The image\n"
        "  # it runs.\n"
        "  repository: x\n"
        "  tag: ''\n"
        "# -- Replicas.\n"
        "replicas: 1\n"
        "#  example: ignored\n"
    )
    assert list(documented_values(text)) == [
        ("image.repository", "The image it runs."),
        ("replicas", "Replicas."),
    ]


def test_every_documented_value_exists_and_every_top_level_value_is_documented() -> None:
    text = (ROOT / CHART / "values.yaml").read_text()
    keys = {key for key, _ in documented_values(text)}
    values = yaml.safe_load(text)
    for key in keys:
        chart.lookup(values, key)  # raises KeyError for a comment on a key that is not there
    for top, value in values.items():
        leaves = {k for k in keys if k == top or k.startswith(f"{top}.")}
        assert leaves, f"values.yaml: `{top}` has no `# --` comment"
        assert isinstance(value, dict) or top in keys


def test_the_schema_offers_every_operator_setting_the_chart_does_not_derive() -> None:
    schema = json.loads((ROOT / CHART / "values.schema.json").read_text())
    offered = set(schema["properties"]["config"]["properties"])
    assert offered == {camel(name) for name in OperatorConfig.model_fields} - {
        camel(name) for name in CHART_MANAGED
    }
    assert schema["properties"]["config"]["additionalProperties"] is False


def test_the_templates_refuse_in_config_exactly_the_settings_the_chart_derives() -> None:
    helpers = (ROOT / CHART / "templates" / "_helpers.tpl").read_text()
    refused = re.search(r'range \$key := list ((?:"[A-Za-z]+" ?)+)', helpers)
    assert refused is not None
    assert set(re.findall(r'"([A-Za-z]+)"', refused.group(1))) == {
        camel(name) for name in CHART_MANAGED
    }
    assert set(OperatorConfig.model_fields) >= CHART_MANAGED

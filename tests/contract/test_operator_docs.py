"""Every operator setting, metric and spec field is documented in docs/operator.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from modelyard_operator.api.v1alpha1 import ModelDeploymentSpec
from modelyard_operator.config import OperatorConfig
from modelyard_operator.metrics import OperatorMetrics

DOC = (Path(__file__).resolve().parents[2] / "docs" / "operator.md").read_text()


def spec_fields(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        wire = field.alias or name
        yield f"{prefix}{wire}"


@pytest.mark.parametrize("setting", sorted(OperatorConfig.model_fields))
def test_setting_is_documented(setting: str) -> None:
    assert f"`{setting}`" in DOC


@pytest.mark.parametrize(
    "metric", sorted(m.name for m in OperatorMetrics().registry.collect()), ids=str
)
def test_metric_is_documented(metric: str) -> None:
    assert metric in DOC


@pytest.mark.parametrize("field", sorted(spec_fields(ModelDeploymentSpec)))
def test_top_level_spec_field_is_documented(field: str) -> None:
    assert f"`{field}" in DOC

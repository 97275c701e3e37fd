"""The Argo CD testdata objects are ModelDeployments the CRD accepts, as far as the CRD goes today.

The health and action testdata follow the rollout status contract (design §6.1), part of which the
CRD does not have yet. Those fields and enum values are listed below, each one explicitly; a test
fails when the CRD gains one of them, so the list only shrinks (remove the entry when the rollout
status lands), and when an entry is no longer used by any testdata file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import openapi

ROOT = Path(__file__).resolve().parents[2]
CUSTOMIZATION = ROOT / "deploy/argocd/resource_customizations/serving.modelyard.io/ModelDeployment"
TESTDATA = sorted(
    [*CUSTOMIZATION.glob("testdata/*.yaml"), *CUSTOMIZATION.glob("actions/testdata/*.yaml")]
)

# In design §6.1, not yet in crds/modeldeployments.yaml.
NOT_IN_CRD_YET = frozenset(
    {
        "spec.rollout",
        "status.canary.weight",
        "status.canary.desiredWeight",
        "status.canary.step",
        "status.canary.steps",
        "status.canary.startedAt",
        "status.canary.stepStartedAt",
        "status.canary.paused",
        "status.canary.failedChecks",
        "status.canary.lastAnalysis",
        "status.rolledBack",
    }
)
ENUM_VALUES_NOT_IN_CRD_YET = frozenset(
    {("status.phase", "Paused"), ("status.phase", "RollingBack")}
)
# A phase from a newer operator: the health check must say Unknown rather than guess.
OFF_CONTRACT_ON_PURPOSE = {"testdata/unknown_unknownPhase.yaml": {("status.phase", "Scaling")}}


@cache
def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / "modeldeployments.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def schema_at(path: str) -> dict[str, Any] | None:
    schema: dict[str, Any] | None = crd_schema()
    for key in path.split("."):
        schema = ((schema or {}).get("properties") or {}).get(key)
    return schema


def findings(path: Path) -> openapi.Findings:
    """spec and status against the CRD (metadata is the apiserver's own ObjectMeta)."""
    obj = yaml.safe_load(path.read_text())
    found = openapi.Findings()
    for part in ("spec", "status"):
        if part in obj:
            one = openapi.check(
                obj[part], crd_schema()["properties"][part], part, skip=NOT_IN_CRD_YET
            )
            found.errors += one.errors
            found.unknown |= one.unknown
            found.enum_values |= one.enum_values
    return found


def test_there_is_testdata() -> None:
    assert len(TESTDATA) >= 19


@pytest.mark.parametrize("path", TESTDATA, ids=lambda p: str(p.relative_to(CUSTOMIZATION)))
def test_testdata_fits_the_crd_but_for_the_listed_fields(path: Path) -> None:
    found = findings(path)
    obj = yaml.safe_load(path.read_text())
    assert (obj["apiVersion"], obj["kind"]) == ("serving.modelyard.io/v1alpha1", "ModelDeployment")
    assert found.errors == []
    assert found.unknown <= NOT_IN_CRD_YET, (
        f"fields neither in the CRD nor listed as coming: {sorted(found.unknown - NOT_IN_CRD_YET)}"
    )
    on_purpose = OFF_CONTRACT_ON_PURPOSE.get(str(path.relative_to(CUSTOMIZATION)), set())
    assert found.enum_values - on_purpose <= ENUM_VALUES_NOT_IN_CRD_YET
    assert on_purpose <= found.enum_values


@pytest.mark.parametrize("field", sorted(NOT_IN_CRD_YET))
def test_a_listed_field_is_still_missing_from_the_crd(field: str) -> None:
    assert schema_at(field) is None, f"the CRD has {field} now: remove it from NOT_IN_CRD_YET"


@pytest.mark.parametrize(("field", "value"), sorted(ENUM_VALUES_NOT_IN_CRD_YET))
def test_a_listed_enum_value_is_still_missing_from_the_crd(field: str, value: str) -> None:
    schema = schema_at(field)
    assert schema is not None
    assert value not in schema["enum"], f"the CRD allows {field}={value} now: remove the entry"


def test_every_listed_exception_is_used_by_some_testdata() -> None:
    used = [findings(path) for path in TESTDATA]
    assert set().union(*(f.unknown for f in used)) == NOT_IN_CRD_YET
    off_contract = set().union(*OFF_CONTRACT_ON_PURPOSE.values())
    assert set().union(*(f.enum_values for f in used)) - off_contract == ENUM_VALUES_NOT_IN_CRD_YET


def test_the_check_rejects_what_the_crd_rejects(tmp_path: Path) -> None:
    obj = yaml.safe_load((CUSTOMIZATION / "testdata" / "healthy_ready.yaml").read_text())
    obj["status"]["phase"] = "Bogus"
    obj["status"]["readyReplicas"] = "four"
    del obj["status"]["conditions"][0]["reason"]
    obj["status"]["surprise"] = True
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(obj))
    found = findings(path)
    assert found.enum_values == {("status.phase", "Bogus")}
    assert found.unknown == {"spec.rollout", "status.surprise"}
    assert found.errors == [
        "status.conditions[].reason: required",
        "status.readyReplicas: str 'four' is not integer",
    ]

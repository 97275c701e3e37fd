"""The Argo CD testdata objects are ModelDeployments the CRD accepts: every field and enum value
they use is in the CRD's schema, but for one phase from a newer operator kept on purpose."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard_operator.api.actions import why_not
from modelyard_operator.api.v1alpha1 import ModelDeploymentStatus
from tests.support import openapi
from tests.support.argocd import ENABLED, VERBS

ROOT = Path(__file__).resolve().parents[2]
CUSTOMIZATION = ROOT / "deploy/argocd/resource_customizations/serving.modelyard.io/ModelDeployment"
TESTDATA = sorted(
    [*CUSTOMIZATION.glob("testdata/*.yaml"), *CUSTOMIZATION.glob("actions/testdata/*.yaml")]
)

# A phase from a newer operator: the health check must say Unknown rather than guess.
OFF_CONTRACT_ON_PURPOSE = {"testdata/unknown_unknownPhase.yaml": {("status.phase", "Scaling")}}
OFF_CONTRACT_STATES = {"unknown_unknownPhase"}


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
            one = openapi.check(obj[part], crd_schema()["properties"][part], part, skip=frozenset())
            found.errors += one.errors
            found.unknown |= one.unknown
            found.enum_values |= one.enum_values
    return found


def test_there_is_testdata() -> None:
    assert len(TESTDATA) >= 19


@pytest.mark.parametrize("path", TESTDATA, ids=lambda p: str(p.relative_to(CUSTOMIZATION)))
def test_testdata_fits_the_crd(path: Path) -> None:
    found = findings(path)
    obj = yaml.safe_load(path.read_text())
    assert (obj["apiVersion"], obj["kind"]) == ("serving.modelyard.io/v1alpha1", "ModelDeployment")
    assert found.errors == []
    assert found.unknown == set(), f"fields the CRD does not have: {sorted(found.unknown)}"
    on_purpose = OFF_CONTRACT_ON_PURPOSE.get(str(path.relative_to(CUSTOMIZATION)), set())
    assert found.enum_values == on_purpose


def test_every_listed_exception_is_used_by_some_testdata() -> None:
    used = [findings(path) for path in TESTDATA]
    off_contract = set().union(*OFF_CONTRACT_ON_PURPOSE.values())
    assert set().union(*(f.enum_values for f in used)) == off_contract


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
    assert found.unknown == {"status.surprise"}
    assert found.errors == [
        "status.conditions[].reason: required",
        "status.readyReplicas: str 'four' is not integer",
    ]


@pytest.mark.parametrize("state", sorted(ENABLED))
def test_argo_cd_enables_exactly_the_actions_the_operator_acts_on(state: str) -> None:
    """The discovery table the Lua is tested against equals the operator's own rule."""
    obj = yaml.safe_load((CUSTOMIZATION / "testdata" / f"{state}.yaml").read_text())
    if state in OFF_CONTRACT_STATES:
        obj["status"]["phase"] = "Progressing"  # a phase this operator does not know
    status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    acted_on = {verb for verb in VERBS if why_not(verb, status) is None}
    assert acted_on == ENABLED[state]

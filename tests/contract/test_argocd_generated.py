"""The Argo CD install snippets are generated from the Lua files, and the docs cover them.

``argocd-cm-patch.yaml`` and ``helm-values.yaml`` must be exactly what ``python -m
hack.gen_argocd`` writes; the Application example must ask for what ModelDeployments need. The
Lua itself runs through Argo CD's own machinery in tests/integration/test_argocd_lua.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hack import gen_argocd

ARGOCD = gen_argocd.ARGOCD
DOC = (gen_argocd.ROOT / "docs" / "argocd.md").read_text()
# The imperative actions of design §2: serving.modelyard.io/action values.
VERBS = ["abort", "pause", "promote", "resume", "retry"]


def load(name: str) -> Any:
    return yaml.safe_load((ARGOCD / name).read_text())


@pytest.mark.parametrize("name", sorted(gen_argocd.OUTPUTS))
def test_generated_file_matches_the_lua_sources(name: str) -> None:
    committed = (ARGOCD / name).read_text()
    assert committed == gen_argocd.OUTPUTS[name](), (
        f"{name} is stale: run python -m hack.gen_argocd"
    )


def test_the_patch_carries_the_scripts_under_argo_cds_keys() -> None:
    patch = load("argocd-cm-patch.yaml")
    custom = gen_argocd.CUSTOMIZATION
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert sorted(patch["data"]) == [
        "resource.customizations.actions.serving.modelyard.io_ModelDeployment",
        "resource.customizations.health.serving.modelyard.io_ModelDeployment",
    ]
    health = patch["data"]["resource.customizations.health.serving.modelyard.io_ModelDeployment"]
    assert health == (custom / "health.lua").read_text()
    actions = yaml.safe_load(
        patch["data"]["resource.customizations.actions.serving.modelyard.io_ModelDeployment"]
    )
    assert actions["discovery.lua"] == (custom / "actions" / "discovery.lua").read_text()
    assert [d["name"] for d in actions["definitions"]] == VERBS
    for definition in actions["definitions"]:
        script = (custom / "actions" / definition["name"] / "action.lua").read_text()
        assert definition["action.lua"] == script
        assert f'["serving.modelyard.io/action"] = "{definition["name"]}"' in script
    # No useOpenLibs key: the scripts run in the restricted sandbox.
    assert not any("useOpenLibs" in key for key in patch["data"])


def test_the_helm_values_hold_the_same_keys_as_the_patch() -> None:
    assert load("helm-values.yaml") == {"configs": {"cm": load("argocd-cm-patch.yaml")["data"]}}


def test_the_application_example_suits_modeldeployments() -> None:
    app = load("application.yaml")
    spec = app["spec"]
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert spec["ignoreDifferences"] == [
        {
            "group": "serving.modelyard.io",
            "kind": "ModelDeployment",
            "jsonPointers": ["/spec/replicas"],
        }
    ]
    options = spec["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options
    assert "RespectIgnoreDifferences=true" in options
    assert spec["source"]["path"]


@pytest.mark.parametrize(
    "needle",
    [
        *(f"`{verb}`" for verb in VERBS),
        *(
            f"`{status}`"
            for status in ("Healthy", "Progressing", "Suspended", "Degraded", "Unknown")
        ),
        "`Missing`",
        "resource.customizations.health.serving.modelyard.io_ModelDeployment",
        "resource.customizations.actions.serving.modelyard.io_ModelDeployment",
        "resource.customizations.useOpenLibs",
        "configs.cm",
        "argocd-cm-patch.yaml",
        "helm-values.yaml",
        "application.yaml",
        "hack/cluster/build-argocd-lua.sh",
        "tests/integration/test_argocd_lua.py",
    ],
)
def test_the_docs_cover(needle: str) -> None:
    assert needle in DOC


def test_the_docs_name_the_argo_cd_version_the_harness_pins() -> None:
    go_mod = (gen_argocd.ROOT / "hack" / "cluster" / "go" / "argocd-lua" / "go.mod").read_text()
    (version,) = {
        line.split()[1]
        for line in go_mod.splitlines()
        if line.strip().startswith("github.com/argoproj/argo-cd/v3 ")
    }
    assert version.startswith("v3.")
    assert f"Argo CD {version}" in DOC


def test_every_lua_file_is_one_the_generator_reads() -> None:
    lua = {
        str(p.relative_to(gen_argocd.CUSTOMIZATION))
        for p in gen_argocd.CUSTOMIZATION.rglob("*.lua")
    }
    assert lua == {
        "health.lua",
        "actions/discovery.lua",
        *(f"actions/{verb}/action.lua" for verb in VERBS),
    }

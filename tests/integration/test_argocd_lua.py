"""modelyard's Argo CD health check and actions, run by Argo CD's own Lua machinery.

The harness ``argocd-lua`` (hack/cluster/go/argocd-lua, built once by
hack/cluster/build-argocd-lua.sh from the pinned argo-cd module) calls util/lua's
``ExecuteHealthLua``, ``ExecuteResourceActionDiscovery`` and ``ExecuteResourceAction``. Every
case of health_test.yaml and actions/action_test.yaml runs three ways: with Lua's standard
libraries (as upstream tests built-in scripts), without them (as Argo CD runs argocd-cm
scripts), and from the generated argocd-cm-patch.yaml through Argo CD's settings manager and
gitops-engine's health entry point (as the API server and the application controller load
them). Building needs Go; without it these tests fail with the build's message, never skip.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard_operator.api.actions import why_not
from modelyard_operator.api.v1alpha1 import ModelDeployment
from tests.support import openapi
from tests.support.argocd import ENABLED, VERBS
from tests.unit.operator.builders import D, steady

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "hack" / "cluster" / "build-argocd-lua.sh"
ARGOCD = ROOT / "deploy" / "argocd"
TREE = ARGOCD / "resource_customizations"
CUSTOMIZATION = TREE / "serving.modelyard.io" / "ModelDeployment"
CM_PATCH = ARGOCD / "argocd-cm-patch.yaml"
HEALTH_TESTS: list[dict[str, Any]] = yaml.safe_load(
    (CUSTOMIZATION / "health_test.yaml").read_text()
)["tests"]
ACTION_TESTS: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (CUSTOMIZATION / "actions" / "action_test.yaml").read_text()
)
STATES = sorted(ENABLED)


@dataclasses.dataclass(frozen=True)
class Harness:
    binary: Path

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *map(str, args)], capture_output=True, text=True, timeout=120
        )

    def json(self, *args: str | Path) -> Any:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def harness() -> Harness:
    done = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        pytest.fail(
            f"{BUILD.relative_to(ROOT)} failed; these tests need Go (CI has it):\n"
            f"{done.stderr[-4000:]}",
            pytrace=False,
        )
    return Harness(Path(done.stdout.strip().splitlines()[-1]))


Report = dict[tuple[str, str, str, str], dict[str, Any]]


def run_report(harness: Harness, *args: str | Path) -> Report:
    done = harness.run("test", *args)
    report = json.loads(done.stdout)
    assert report["argocd"].startswith("v3."), report["argocd"]
    assert done.returncode == (1 if report["failed"] else 0), done.stderr
    cases: Report = {}
    for case in report["cases"]:
        key = (case["kind"], case.get("action", ""), case["inputPath"], case["mode"])
        assert key not in cases, f"two cases for {key}"
        cases[key] = case
    return cases


@pytest.fixture(scope="module")
def from_files(harness: Harness) -> Report:
    """Scripts from the resource_customizations tree, with and without the standard libraries."""
    return run_report(harness, TREE)


@pytest.fixture(scope="module")
def from_configmap(harness: Harness) -> Report:
    """Scripts from argocd-cm-patch.yaml, loaded by Argo CD's settings manager."""
    return run_report(harness, "--argocd-cm", CM_PATCH, TREE)


def pick(
    from_files: Report, from_configmap: Report, key: tuple[str, str, str, str]
) -> dict[str, Any]:
    case = (from_configmap if key[3] == "argocd-cm" else from_files).get(key)
    assert case is not None, f"the harness ran no case {key}"
    assert case.get("error", "") == ""
    return case


def test_the_harness_runs_every_case_of_both_files(
    from_files: Report, from_configmap: Report
) -> None:
    health, discovery = len(HEALTH_TESTS), len(ACTION_TESTS["discoveryTests"])
    actions = len(ACTION_TESTS["actionTests"])
    assert len(from_files) == 2 * health + 2 * discovery + actions
    assert len(from_configmap) == health + discovery + actions
    assert all(case["passed"] for case in [*from_files.values(), *from_configmap.values()])


@pytest.mark.parametrize("mode", ["openLibs", "restricted", "argocd-cm"])
@pytest.mark.parametrize("test", HEALTH_TESTS, ids=lambda t: Path(t["inputPath"]).stem)
def test_health(
    test: dict[str, Any], mode: str, from_files: Report, from_configmap: Report
) -> None:
    case = pick(from_files, from_configmap, ("health", "", test["inputPath"], mode))
    assert case["actual"] == test["healthStatus"]
    assert case["passed"]


def normalised(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Argo CD's ResourceAction as JSON omits ``disabled: false``."""
    return sorted(
        ({**a, "disabled": bool(a.get("disabled", False))} for a in actions),
        key=lambda a: a["name"],
    )


@pytest.mark.parametrize("mode", ["openLibs", "restricted", "argocd-cm"])
@pytest.mark.parametrize(
    "test", ACTION_TESTS["discoveryTests"], ids=lambda t: Path(t["inputPath"]).stem
)
def test_discovery(
    test: dict[str, Any], mode: str, from_files: Report, from_configmap: Report
) -> None:
    case = pick(from_files, from_configmap, ("discovery", "", test["inputPath"], mode))
    assert normalised(case["actual"]) == normalised(test["result"])
    assert case["passed"]


@pytest.mark.parametrize("mode", ["restricted", "argocd-cm"])
@pytest.mark.parametrize(
    "test",
    ACTION_TESTS["actionTests"],
    ids=lambda t: f"{t['action']}-{Path(t['inputPath']).stem}",
)
def test_action(
    test: dict[str, Any], mode: str, from_files: Report, from_configmap: Report
) -> None:
    case = pick(from_files, from_configmap, ("action", test["action"], test["inputPath"], mode))
    if "expectedErrorMessage" in test:
        assert case["actual"] == {"error": test["expectedErrorMessage"]}
    else:
        expected = yaml.safe_load(
            (CUSTOMIZATION / "actions" / test["expectedOutputPath"]).read_text()
        )
        assert case["actual"] == [expected]
    assert case["passed"]


@pytest.mark.parametrize("state", STATES)
def test_discovery_enables_exactly_what_applies(harness: Harness, state: str) -> None:
    obj = CUSTOMIZATION / "testdata" / f"{state}.yaml"
    via_cm = harness.json("discovery", "--argocd-cm", CM_PATCH, "--obj", obj)
    via_script = harness.json(
        "discovery", "--script", CUSTOMIZATION / "actions" / "discovery.lua", "--obj", obj
    )
    assert normalised(via_cm) == normalised(via_script)
    assert [a["name"] for a in normalised(via_cm)] == list(VERBS)
    assert {a["name"] for a in normalised(via_cm) if not a["disabled"]} == ENABLED[state]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("state", STATES)
def test_an_action_runs_exactly_where_discovery_enables_it(
    harness: Harness, state: str, verb: str
) -> None:
    """Argo CD's API server does not check discovery before it runs an action; the script does."""
    done = harness.run(
        "action",
        "--script",
        CUSTOMIZATION / "actions" / verb / "action.lua",
        "--obj",
        CUSTOMIZATION / "testdata" / f"{state}.yaml",
    )
    if verb in ENABLED[state]:
        assert done.returncode == 0, done.stderr
        (impacted,) = json.loads(done.stdout)
        assert impacted["operation"] == "patch"
        # The merge patch the API server sends: the annotation, nothing of spec or status.
        assert impacted["patch"] == {
            "metadata": {"annotations": {"serving.modelyard.io/action": verb}}
        }
    else:
        assert done.returncode == 1
        assert done.stderr.startswith(f"argocd-lua: {verb} applies only while ")


def test_the_health_check_never_says_missing() -> None:
    """Missing is Argo CD's word for an object absent from the cluster; this one exists."""
    statuses = {t["healthStatus"]["status"] for t in HEALTH_TESTS}
    assert statuses == {"Healthy", "Progressing", "Suspended", "Degraded", "Unknown"}
    no_status = [t for t in HEALTH_TESTS if "noStatus" in t["inputPath"]]
    assert [t["healthStatus"] for t in no_status] == [
        {"status": "Progressing", "message": "Waiting for the operator to report status"}
    ]


def test_argo_cd_reports_an_object_being_deleted_before_the_script_runs(
    harness: Harness, tmp_path: Path
) -> None:
    obj = yaml.safe_load((CUSTOMIZATION / "testdata" / "degraded_rolledBack.yaml").read_text())
    obj["metadata"]["deletionTimestamp"] = "2026-11-30T10:00:00Z"
    obj["metadata"]["finalizers"] = ["serving.modelyard.io/finalizer"]
    path = tmp_path / "deleting.yaml"
    path.write_text(yaml.safe_dump(obj))
    assert harness.json("health", "--argocd-cm", CM_PATCH, "--obj", path) == {
        "status": "Progressing",
        "message": "Pending deletion",
    }
    assert harness.json("health", "--script", CUSTOMIZATION / "health.lua", "--obj", path) == {
        "status": "Degraded",
        "message": "Rolled back v3: errors: error rate 0.043 > 0.01 in 3 checks; v2 serves",
    }


def test_the_restricted_mode_is_really_restricted(harness: Harness, tmp_path: Path) -> None:
    """A script that needs the string library passes with open libraries and fails without."""
    script = tmp_path / "health.lua"
    script.write_text('return {status = "Healthy", message = string.upper("ok")}\n')
    obj = CUSTOMIZATION / "testdata" / "healthy_ready.yaml"
    assert harness.json("health", "--script", script, "--open-libs", "--obj", obj) == {
        "status": "Healthy",
        "message": "OK",
    }
    done = harness.run("health", "--script", script, "--obj", obj)
    assert done.returncode == 1
    assert "string" in done.stderr


def test_a_wrong_expectation_fails_the_case(harness: Harness, tmp_path: Path) -> None:
    tree = tmp_path / "resource_customizations" / "serving.modelyard.io" / "ModelDeployment"
    (tree / "testdata").mkdir(parents=True)
    (tree / "health.lua").write_text((CUSTOMIZATION / "health.lua").read_text())
    ready = CUSTOMIZATION / "testdata" / "healthy_ready.yaml"
    (tree / "testdata" / "ready.yaml").write_text(ready.read_text())
    wrong = {"status": "Healthy", "message": "Serving v2: 4/4 replicas ready"}
    tests = {"tests": [{"healthStatus": wrong, "inputPath": "testdata/ready.yaml"}]}
    (tree / "health_test.yaml").write_text(yaml.safe_dump(tests))
    done = harness.run("test", tmp_path / "resource_customizations")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert (report["passed"], report["failed"]) == (0, 2)
    assert {c["actual"]["message"] for c in report["cases"]} == {"Serving v3: 4/4 replicas ready"}


def test_the_application_example_fits_argo_cds_crd(harness: Harness) -> None:
    module = Path(subprocess.check_output([str(BUILD), "--print-module-dir"], text=True).strip())
    crd = yaml.safe_load((module / "manifests" / "crds" / "application-crd.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    app = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    found = openapi.check(app["spec"], schema["properties"]["spec"], "spec")
    assert (found.errors, found.unknown, found.enum_values) == ([], set(), set())


def operator_statuses() -> dict[str, ModelDeployment]:
    """ModelDeployments whose status the operator's own pure code computed, through a canary
    that steps, is paused, resumed and promoted, and one that is rolled back."""
    seen: dict[str, ModelDeployment] = {}
    world = steady()
    world.md = world.md.model_copy(update={"metadata": world.md.metadata.model_copy(
        update={"generation": 3})})  # fmt: skip
    world.tick(revision=world.stable.revision)
    seen["ready"] = world.md
    world.tick()
    world.tick(seconds=1)
    seen["stepping"] = world.md
    world.tick(action="pause", seconds=1)
    seen["paused"] = world.md
    world.tick(action="resume", analysis="pass", seconds=10)
    world.tick(seconds=1)
    world.tick(analysis="pass", seconds=10)
    seen["promoting"] = world.md
    world.stable = dataclasses.replace(world.stable, revision=D)
    world.tick(seconds=1)
    seen["promoted"] = world.md
    failing = steady()
    failing.tick()
    failing.tick(seconds=1)
    failing.ready = False
    failing.tick(analysis="fail", seconds=5)
    failing.tick(analysis="fail", seconds=5)
    seen["rollingBack"] = failing.md
    failing.ready = True
    failing.stable = dataclasses.replace(failing.stable, ready=failing.stable.replicas)
    failing.tick(seconds=1)
    seen["rolledBack"] = failing.md
    return seen


EXPECTED_HEALTH = {
    "ready": "Healthy", "stepping": "Progressing", "paused": "Suspended",
    "promoting": "Progressing", "promoted": "Healthy", "rollingBack": "Progressing",
    "rolledBack": "Degraded",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED_HEALTH))
def test_statuses_the_operator_writes_read_right_in_argo_cd(
    harness: Harness, tmp_path: Path, name: str
) -> None:
    md = operator_statuses()[name]
    obj = md.model_dump(mode="json", by_alias=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(obj))
    health = harness.json("health", "--argocd-cm", CM_PATCH, "--obj", path)
    assert health["status"] == EXPECTED_HEALTH[name], (md.status.phase, health)
    discovery = harness.json("discovery", "--argocd-cm", CM_PATCH, "--obj", path)
    enabled = {a["name"] for a in normalised(discovery) if not a["disabled"]}
    assert enabled == {verb for verb in VERBS if why_not(verb, md.status) is None}

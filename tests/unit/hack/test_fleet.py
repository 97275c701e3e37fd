"""The convergence check the fault tests rest on finds each way a fleet can fail to converge
(so those tests can fail): a missing or extra Deployment, a stale spec or status, a revision
that ran without a history entry, a canary left in status."""

from __future__ import annotations

from typing import Any

import pytest

from hack.testbed.fleet import problems
from modelyard_runtime.contract.names import REVISION_LABEL, TRACK_LABEL, VERSION_LABEL


def mdep(name: str, version: str = "v2", *, generation: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": generation},
        "spec": {"model": {"version": version}},
        "status": {
            "observedGeneration": generation,
            "phase": "Ready",
            "stable": {"version": version, "revision": f"rev-{version}"},
            "canary": {},
            "history": [
                {"version": version, "revision": f"rev-{version}", "result": "Promoted"},
                {"version": "v1", "revision": "rev-v1", "result": "Ready"},
            ],
        },
    }


def owner(uid: str) -> dict[str, Any]:
    return {"ownerReferences": [{"uid": uid, "controller": True}]}


def deployment(owner_name: str, version: str = "v2", track: str = "stable") -> dict[str, Any]:
    name = owner_name if track == "stable" else f"{owner_name}-{track}"
    labels = {TRACK_LABEL: track, REVISION_LABEL: f"rev-{version}", VERSION_LABEL: version}
    return {
        "metadata": {"name": name, "uid": f"uid-deploy-{name}", **owner(f"uid-{owner_name}")},
        "spec": {"template": {"metadata": {"labels": labels}}},
    }


def replicaset(owner_name: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {REVISION_LABEL: f"rev-{version}"},
            **owner(f"uid-deploy-{owner_name}"),
        }
    }


def converged() -> tuple[dict[str, str], list[Any], list[Any], list[Any], list[Any]]:
    expected = {"a": "v2", "b": "v2"}
    mdeps = [mdep("a"), mdep("b")]
    deployments = [deployment("a"), deployment("b")]
    replicasets = [replicaset(n, v) for n in "ab" for v in ("v1", "v2")]
    services = [{"metadata": {"name": n, **owner(f"uid-{n}")}} for n in "ab"]
    return expected, mdeps, deployments, replicasets, services


def test_a_converged_fleet_has_no_problems() -> None:
    assert problems(*converged()) == []


@pytest.mark.parametrize(
    ("breakage", "found"),
    [
        (lambda e, m, d, r, s: m.pop(), "b: ModelDeployment missing"),
        (lambda e, m, d, r, s: d.pop(), "b: 0 Deployments"),
        (lambda e, m, d, r, s: d.append(deployment("b", track="canary")), "b: 2 Deployments"),
        (lambda e, m, d, r, s: d.append(deployment("gone")), "gone left behind"),
        (lambda e, m, d, r, s: e.update(b="v3"), "b: spec says v2, the fleet wrote v3"),
        (lambda e, m, d, r, s: m[1]["status"].update(observedGeneration=1), "observedGeneration"),
        (lambda e, m, d, r, s: m[1]["status"].update(phase="Progressing"), "b: phase Progressing"),
        (lambda e, m, d, r, s: m[1]["status"].update(canary={"revision": "x"}), "canary x"),
        (lambda e, m, d, r, s: r.append(replicaset("b", "v9")), "rev-v9 ran but is not in history"),
        (lambda e, m, d, r, s: m[1]["status"]["history"].pop(0), "history head v1"),
        (lambda e, m, d, r, s: s.pop(), "b: Service missing"),
        (
            lambda e, m, d, r, s: m[1]["status"]["history"][1].update(result="Progressing"),
            "still Progressing",
        ),
        (
            lambda e, m, d, r, s: d[1]["spec"]["template"]["metadata"]["labels"].update(
                {VERSION_LABEL: "v1"}
            ),
            "b: Deployment runs v1",
        ),
    ],
)
def test_each_way_of_not_converging_is_found(breakage: Any, found: str) -> None:
    fleet = converged()
    breakage(*fleet)
    assert any(found in problem for problem in problems(*fleet)), problems(*fleet)

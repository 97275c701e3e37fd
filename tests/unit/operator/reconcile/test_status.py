"""Status is computed from observed objects and the rollout's plan: conditions, phase, history,
transitions (the direct-rollout cases; canaries are in test_rollout.py)."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard_operator.reconcile.observed import Problem, pod_failure
from modelyard_runtime.contract.names import REVISION_LABEL
from tests.unit.operator.builders import (
    LATER,
    NOW,
    REV,
    crashed,
    deployment,
    model,
    pod,
    step,
)


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_all_replicas_ready_is_ready() -> None:
    status, transitions = step(
        model(sha256="a" * 64), deployment(), [pod(), pod("p2")], rev=REV, now=NOW
    )[:2]
    assert status.phase == "Ready"
    assert conditions(status) == {
        "Ready": ("True", "Available"),
        "Progressing": ("False", "RolloutComplete"),
        "ModelVerified": ("True", "DigestMatched"),
        "CanaryHealthy": ("Unknown", "NoCanary"),
        "Degraded": ("False", "AsExpected"),
    }
    assert (status.replicas, status.ready_replicas, status.observed_generation) == (2, 2, 3)
    assert status.stable.revision == REV
    assert status.history[0].result == "Ready"
    assert transitions == []  # a new object starts quietly when all is well


def test_becoming_ready_posts_normal_events() -> None:
    md = model()
    pending, first = step(md, None, [], rev=REV, now=NOW)[:2]
    assert first == []
    md = md.model_copy(update={"status": pending})
    _, transitions = step(md, deployment(), [pod()], rev=REV, now=LATER)[:2]
    assert {(t.type, t.status, t.reason) for t in transitions} == {
        ("Ready", "True", "Available"),
        ("Progressing", "False", "RolloutComplete"),
        ("ModelVerified", "True", "NoDigest"),
    }
    assert not any(t.warning for t in transitions)


def test_no_deployment_yet_is_pending() -> None:
    status, _ = step(model(), None, [], rev=REV, now=NOW)[:2]
    assert status.phase == "Pending"
    assert conditions(status)["ModelVerified"] == ("Unknown", "Pending")


def test_rolling_out_is_progressing() -> None:
    status, _ = step(
        model(), deployment(ready=1), [pod(), pod("p2", ready=False)], rev=REV, now=NOW
    )[:2]
    assert status.phase == "Progressing"
    assert conditions(status)["Ready"] == ("False", "RollingOut")
    assert conditions(status)["Progressing"] == ("True", "RollingOut")


@pytest.mark.parametrize(
    ("container", "message", "reason", "verified"),
    [
        ("fetch", "verify: sha256 of x is 11, expected 00", "DigestMismatch", "False"),
        ("fetch", "download: GET https://h/m.onnx: HTTP 404 Not Found", "DownloadFailed", "False"),
        ("runtime", "load: model file is not ONNX", "LoadFailed", "True"),
        ("runtime", "provider: CUDA requested but not available", "ProviderFailed", "True"),
        ("runtime", "warmup: batch size 8 failed", "WarmupFailed", "True"),
        ("runtime", "Traceback ...\nsomething odd", "ContainerFailed", "True"),
    ],
)
def test_a_failing_stage_is_named(container: str, message: str, reason: str, verified: str) -> None:
    statuses: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "False"}]}
    if container == "fetch":
        statuses["initContainerStatuses"] = [crashed("fetch", message)]
    else:
        statuses["initContainerStatuses"] = [
            {"name": "fetch", "state": {"terminated": {"exitCode": 0}}}
        ]
        statuses["containerStatuses"] = [crashed("runtime", message)]
    failing = {"metadata": {"name": "p1", "labels": {REVISION_LABEL: REV}}, "status": statuses}
    status, transitions = step(model(), deployment(ready=0), [failing], rev=REV, now=NOW)[:2]
    assert status.phase == "Failed"
    assert conditions(status)["Ready"] == ("False", reason)
    assert conditions(status)["Degraded"] == ("True", reason)
    assert conditions(status)["ModelVerified"][0] == verified
    assert status.history[0].result == "Failed"
    assert status.history[0].reason == reason
    assert any(t.warning and t.reason == reason for t in transitions)


def test_failures_of_an_older_revision_are_ignored() -> None:
    old = pod("old", ready=False, rev="older")
    old["status"]["containerStatuses"] = [crashed("runtime", "load: broken")]
    status, _ = step(model(), deployment(), [pod(), pod("p2"), old], rev=REV, now=NOW)[:2]
    assert status.phase == "Ready"


def test_waiting_on_a_missing_secret_or_image_is_a_failure() -> None:
    reason = {"reason": "CreateContainerConfigError", "message": 'secret "s3" not found'}
    waiting = {"name": "fetch", "state": {"waiting": reason}}
    failing = {"metadata": {"name": "p", "labels": {REVISION_LABEL: REV}},
               "status": {"initContainerStatuses": [waiting]}}  # fmt: skip
    failure = pod_failure(failing)
    assert failure is not None
    assert (failure.reason, failure.message) == (
        "CreateContainerConfigError",
        'fetch: secret "s3" not found',
    )


def test_a_problem_found_by_the_handler_wins_and_a_ready_pod_makes_it_degraded() -> None:
    problem = Problem("SecretNotFound", "Secret 'x' does not exist")
    status, _ = step(model(), deployment(), [pod(), pod("p2")], problem=problem, rev=REV, now=NOW)[
        :2
    ]
    assert status.phase == "Degraded"
    assert conditions(status)["Ready"] == ("False", "SecretNotFound")


def test_progress_deadline_exceeded_is_degraded() -> None:
    stuck = deployment(
        ready=0, conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    )
    status, _ = step(model(), stuck, [], rev=REV, now=NOW)[:2]
    assert conditions(status)["Degraded"] == ("True", "ProgressDeadlineExceeded")
    assert status.phase == "Failed"


def test_unchanged_conditions_keep_their_transition_time_and_post_no_event() -> None:
    md = model()
    first, _ = step(md, deployment(), [pod()], rev=REV, now=NOW)[:2]
    again = md.model_copy(update={"status": first})
    second, transitions = step(again, deployment(), [pod()], rev=REV, now=LATER)[:2]
    assert transitions == []
    assert second == first
    assert {c.last_transition_time for c in second.conditions} == {NOW}


def test_a_new_revision_supersedes_and_history_is_bounded() -> None:
    md = model()
    for i in range(12):
        status, _ = step(md, None, [], rev=f"r{i}", now=NOW)[:2]
        md = md.model_copy(update={"status": status})
    history = md.status.history
    assert len(history) == 10
    assert [h.revision for h in history[:2]] == ["r11", "r10"]
    assert history[1].result == "Superseded"


def test_stable_stays_on_the_old_revision_until_the_new_one_is_ready() -> None:
    md = model()
    ready, _ = step(md, deployment(), [pod()], rev=REV, now=NOW)[:2]
    md = md.model_copy(update={"status": ready})
    rolling, _ = step(
        md, deployment(ready=1), [pod(), pod("new", ready=False, rev="next")], rev="next", now=LATER
    )[:2]
    assert rolling.stable.revision == REV
    assert rolling.stable.ready_replicas == 1
    assert rolling.phase == "Progressing"

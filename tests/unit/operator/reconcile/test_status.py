"""Status is computed from observed objects alone: conditions, phase, history, transitions."""

from __future__ import annotations

from typing import Any

import pytest

from hack.testbed.manifests import md_manifest
from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.reconcile.naming import REVISION_LABEL
from modelyard_operator.reconcile.status import (
    Observed,
    Problem,
    compute_status,
    pod_failure,
)

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"
REV = "abc123"


def model(**kwargs: Any) -> ModelDeployment:
    manifest = md_manifest("m", **kwargs)
    manifest["metadata"].update(namespace="ns", uid="u1", generation=3)
    return ModelDeployment.model_validate(manifest)


def deployment(desired: int = 2, ready: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "generation": 1},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": 1,
            "replicas": desired,
            "updatedReplicas": desired,
            "availableReplicas": ready,
            "readyReplicas": ready,
            **status,
        },
    }


def pod(name: str = "p1", *, ready: bool = True, rev: str = REV, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {REVISION_LABEL: rev}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "initContainerStatuses": [{"name": "fetch", "state": {"terminated": {"exitCode": 0}}}],
            **status,
        },
    }


def crashed(container: str, message: str, code: int = 1) -> dict[str, Any]:
    return {
        "name": container,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": code, "message": message}},
    }


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_all_replicas_ready_is_ready() -> None:
    status, transitions = compute_status(
        model(sha256="a" * 64), Observed(deployment(), [pod(), pod("p2")]),
        rev=REV, image="img", now=NOW,
    )  # fmt: skip
    assert status.phase == "Ready"
    assert conditions(status) == {
        "Ready": ("True", "Available"),
        "Progressing": ("False", "RolloutComplete"),
        "ModelVerified": ("True", "DigestMatched"),
        "Degraded": ("False", "AsExpected"),
    }
    assert (status.replicas, status.ready_replicas, status.observed_generation) == (2, 2, 3)
    assert status.stable.revision == REV
    assert status.history[0].result == "Ready"
    assert transitions == []  # a new object starts quietly when all is well


def test_becoming_ready_posts_normal_events() -> None:
    md = model()
    pending, first = compute_status(md, Observed(None, []), rev=REV, image="i", now=NOW)
    assert first == []
    md = md.model_copy(update={"status": pending})
    _, transitions = compute_status(
        md, Observed(deployment(), [pod()]), rev=REV, image="i", now=LATER
    )
    assert {(t.type, t.status, t.reason) for t in transitions} == {
        ("Ready", "True", "Available"),
        ("Progressing", "False", "RolloutComplete"),
        ("ModelVerified", "True", "NoDigest"),
    }
    assert not any(t.warning for t in transitions)


def test_no_deployment_yet_is_pending() -> None:
    status, _ = compute_status(model(), Observed(None, []), rev=REV, image="img", now=NOW)
    assert status.phase == "Pending"
    assert conditions(status)["ModelVerified"] == ("Unknown", "Pending")


def test_rolling_out_is_progressing() -> None:
    status, _ = compute_status(
        model(), Observed(deployment(ready=1), [pod(), pod("p2", ready=False)]),
        rev=REV, image="img", now=NOW,
    )  # fmt: skip
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
    status, transitions = compute_status(
        model(), Observed(deployment(ready=0), [failing]), rev=REV, image="img", now=NOW
    )
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
    status, _ = compute_status(
        model(), Observed(deployment(), [pod(), pod("p2"), old]), rev=REV, image="img", now=NOW
    )
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
    status, _ = compute_status(
        model(), Observed(deployment(), [pod(), pod("p2")], problem), rev=REV, image="i", now=NOW
    )
    assert status.phase == "Degraded"
    assert conditions(status)["Ready"] == ("False", "SecretNotFound")


def test_progress_deadline_exceeded_is_degraded() -> None:
    stuck = deployment(
        ready=0, conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    )
    status, _ = compute_status(model(), Observed(stuck, []), rev=REV, image="i", now=NOW)
    assert conditions(status)["Degraded"] == ("True", "ProgressDeadlineExceeded")
    assert status.phase == "Failed"


def test_unchanged_conditions_keep_their_transition_time_and_post_no_event() -> None:
    md = model()
    first, _ = compute_status(md, Observed(deployment(), [pod()]), rev=REV, image="i", now=NOW)
    again = md.model_copy(update={"status": first})
    second, transitions = compute_status(
        again, Observed(deployment(), [pod()]), rev=REV, image="i", now=LATER
    )
    assert transitions == []
    assert second == first
    assert {c.last_transition_time for c in second.conditions} == {NOW}


def test_a_new_revision_supersedes_and_history_is_bounded() -> None:
    md = model()
    for i in range(12):
        status, _ = compute_status(md, Observed(None, []), rev=f"r{i}", image="i", now=NOW)
        md = md.model_copy(update={"status": status})
    history = md.status.history
    assert len(history) == 10
    assert [h.revision for h in history[:2]] == ["r11", "r10"]
    assert history[1].result == "Superseded"


def test_stable_stays_on_the_old_revision_until_the_new_one_is_ready() -> None:
    md = model()
    ready, _ = compute_status(md, Observed(deployment(), [pod()]), rev=REV, image="i", now=NOW)
    md = md.model_copy(update={"status": ready})
    rolling, _ = compute_status(
        md, Observed(deployment(ready=1), [pod(), pod("new", ready=False, rev="next")]),
        rev="next", image="i", now=LATER,
    )  # fmt: skip
    assert rolling.stable.revision == REV
    assert rolling.stable.ready_replicas == 1
    assert rolling.phase == "Progressing"

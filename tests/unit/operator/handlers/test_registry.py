"""The kopf glue: how a spec handler maps the operator's errors onto kopf, and how the operator
finds the apiserver from a pod's environment (as client-go does)."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from hack.testbed.manifests import md_manifest
from modelyard_operator.config import OperatorConfig
from modelyard_operator.controller.sync import Controller
from modelyard_operator.controller.view import View, trim
from modelyard_operator.handlers.registry import handle_spec, in_cluster_server
from modelyard_operator.k8s.errors import (
    K8sConflictError,
    K8sError,
    K8sForbiddenError,
    K8sInvalidError,
)
from modelyard_operator.k8s.fake import FakeKube


@pytest.mark.parametrize(
    ("env", "server"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
         "https://10.0.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"},
         "https://[fd00::1]:6443"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_in_cluster_server(env: dict[str, str], server: str | None) -> None:
    assert in_cluster_server(env) == server


def controller_with(kube: FakeKube, body: dict[str, Any]) -> Controller:
    kube.put(body)
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    view = View({key: [trim(body)]}, {}, {})
    return Controller(config=OperatorConfig(secret_recheck_seconds=7), client=kube, view=view)


def manifest(**extra: Any) -> dict[str, Any]:
    body = md_manifest("m", **extra)
    body["metadata"].update(namespace="ns", uid="u1", generation=1)
    return body


async def test_a_good_spec_is_applied_and_counted_a_success() -> None:
    kube, body = FakeKube(), manifest()
    controller = controller_with(kube, body)
    await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=0)
    assert kube.find("Deployment", "ns", "m") is not None
    assert controller.metrics.reconcile_total.labels("success")._value.get() == 1


async def test_a_spec_that_cannot_be_parsed_is_permanent_with_a_warning_event() -> None:
    kube, body = FakeKube(), manifest()
    body["spec"]["replicas"] = "many"
    controller = controller_with(kube, manifest())
    with pytest.raises(kopf.PermanentError, match="replicas"):
        await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=0)
    (event,) = kube.of_kind("Event")
    assert (event["type"], event["reason"]) == ("Warning", "InvalidSpec")
    assert event["source"]["component"] == "modelyard-operator"


async def test_a_child_the_apiserver_rejects_becomes_a_condition() -> None:
    kube, body = FakeKube(), manifest()
    controller = controller_with(kube, body)
    kube.fail_next("apply", "Service", K8sInvalidError(422, "Service is invalid: bad port"))
    with pytest.raises(kopf.TemporaryError, match="bad port"):
        await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=0)
    md = kube.find("ModelDeployment", "ns", "m")
    assert md is not None
    ready = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["reason"], ready["message"]) == ("InvalidSpec", "Service is invalid: bad port")


async def test_a_rejected_child_is_tried_again_and_heals_if_the_rejection_was_passing() -> None:
    """An apiserver shutting down answers 422 too (a Service's IP cannot be allocated): the
    rejection is reported, and the retry that succeeds clears it."""
    kube, body = FakeKube(), manifest()
    controller = controller_with(kube, body)
    failed = 'Service "m" is invalid: spec.clusterIPs: failed to allocate IP: connection refused'
    kube.fail_next("apply", "Service", K8sInvalidError(422, failed))
    with pytest.raises(kopf.TemporaryError):
        await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=0)
    await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=1)
    assert kube.find("Service", "ns", "m") is not None
    md = kube.find("ModelDeployment", "ns", "m")
    assert md is not None
    ready = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] != "InvalidSpec"


@pytest.mark.parametrize(("retry", "delay"), [(0, 2.0), (3, 16.0), (4, 30.0), (20, 30.0)])
async def test_a_retryable_api_error_backs_off(retry: int, delay: float) -> None:
    kube, body = FakeKube(), manifest()
    controller = controller_with(kube, body)
    kube.fail_next("apply", "Service", K8sConflictError(409, "conflict"))
    with pytest.raises(kopf.TemporaryError) as raised:
        await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=retry)
    assert raised.value.delay == delay
    assert controller.metrics.reconcile_total.labels("retry")._value.get() == 1


@pytest.mark.parametrize(
    "error",
    [
        K8sError(0, "connection refused"),  # the apiserver restarting
        K8sError(503, "storage is (re)initializing"),
        K8sError(500, "etcdserver: request timed out"),  # etcd away
        K8sError(429, "too many requests"),
        # A restarted apiserver denies until its RBAC cache has loaded; a permission may be
        # granted later: never given up on for good.
        K8sForbiddenError(403, 'clusterrole "modelyard-operator" not found'),
    ],
)
async def test_an_api_outage_is_retried_never_given_up(error: K8sError) -> None:
    kube, body = FakeKube(), manifest()
    controller = controller_with(kube, body)
    kube.fail_next("apply", "Service", error)
    with pytest.raises(kopf.TemporaryError):
        await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=0)


async def test_a_rejected_child_whose_condition_cannot_be_written_is_tried_again() -> None:
    """The apiserver rejects a child, then goes away before the condition is written: not an
    unexpected error (kopf's 60 s retry), nor given up on: retried with backoff."""
    kube, body = FakeKube(), manifest()
    controller = controller_with(kube, body)
    kube.fail_next("apply", "Service", K8sInvalidError(422, "Service is invalid"))
    kube.fail_next("patch_status", "ModelDeployment", K8sError(0, "connection refused"))
    with pytest.raises(kopf.TemporaryError) as raised:
        await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=1)
    assert raised.value.delay == 4.0


async def test_a_missing_secret_is_checked_again_later() -> None:
    kube, body = FakeKube(), manifest(secret="creds")
    controller = controller_with(kube, body)
    with pytest.raises(kopf.TemporaryError, match="creds") as raised:
        await handle_spec(controller, ("ns", "m"), body, resuming=False, retry=0)
    assert raised.value.delay == 7

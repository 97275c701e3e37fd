"""Desired children: deterministic, restricted-compliant, and carrying the design §3 contract."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from hack.testbed.manifests import md_manifest
from modelyard_operator.api.v1alpha1 import ModelDeployment, seconds
from modelyard_operator.reconcile import naming
from modelyard_operator.reconcile.autoscaling import build_hpa
from modelyard_operator.reconcile.children import (
    applied_digest,
    build_pdb,
    static_children,
    with_digest,
)
from modelyard_operator.reconcile.deployment import build_deployment


def model(**kwargs: Any) -> ModelDeployment:
    manifest = md_manifest("m", **kwargs)
    manifest["metadata"].update(namespace="ns", uid="u1", generation=1)
    return ModelDeployment.model_validate(manifest)


def pod_spec(md: ModelDeployment) -> dict[str, Any]:
    return dict(build_deployment(md, "img", rev="r1", replicas=1)["spec"]["template"]["spec"])


def test_children_are_deterministic() -> None:
    md = model(autoscaling=True)
    first = json.dumps([*static_children(md), build_deployment(md, "img", rev="r1", replicas=None)])
    again = [*static_children(md), build_deployment(md, "img", rev="r1", replicas=None)]
    assert json.dumps(again) == first


def test_revision_changes_with_what_a_pod_serves_and_only_that() -> None:
    base = naming.revision(model(), "img")
    assert naming.revision(model(version="v2"), "img") != base
    assert naming.revision(model(), "img:2") != base
    assert naming.revision(model(replicas=5), "img") == base


@pytest.mark.parametrize("container", ["initContainers", "containers"])
def test_every_container_passes_restricted(container: str) -> None:
    spec = pod_spec(model())
    for c in spec[container]:
        ctx = c["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["runAsNonRoot"] is True
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False


def test_pod_labels_follow_the_contract() -> None:
    labels = build_deployment(model(), "img", rev="r1", replicas=1)["spec"]["template"]["metadata"][
        "labels"
    ]
    assert labels == {
        "app.kubernetes.io/instance": "m",
        "app.kubernetes.io/managed-by": "modelyard-operator",
        "app.kubernetes.io/name": "modelyard-runtime",
        "app.kubernetes.io/part-of": "modelyard",
        "serving.modelyard.io/deployment": "m",
        "serving.modelyard.io/model-version": "v1",
        "serving.modelyard.io/revision": "r1",
        "serving.modelyard.io/track": "stable",
    }


def test_gpu_resources_add_a_toleration_and_keep_limits() -> None:
    md = model(extra_spec={"resources": {"limits": {"nvidia.com/gpu": 1}}})
    spec = pod_spec(md)
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]


def test_pvc_source_is_mounted_read_only_and_fetched_as_a_file() -> None:
    spec = pod_spec(model(uri="pvc://models-claim/resnet/model.onnx"))
    fetch = spec["initContainers"][0]
    assert fetch["args"][:3] == ["fetch", "--uri", "file:///mnt/source/resnet/model.onnx"]
    claim = {"claimName": "models-claim", "readOnly": True}
    assert {"name": "source", "persistentVolumeClaim": claim} in spec["volumes"]


def test_storage_secret_reaches_only_the_fetch_container() -> None:
    spec = pod_spec(model(secret="creds"))
    assert spec["initContainers"][0]["envFrom"] == [{"secretRef": {"name": "creds"}}]
    assert "envFrom" not in spec["containers"][0]


def test_auth_token_is_mounted_and_named_in_env() -> None:
    md = model(extra_spec={"auth": {"tokenSecretRef": {"name": "tok", "key": "bearer"}}})
    spec = pod_spec(md)
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["MODELYARD_AUTH_TOKEN_FILE"] == "/var/run/secrets/modelyard/auth/token"
    volume = next(v for v in spec["volumes"] if v["name"] == "auth")
    assert volume["secret"] == {"secretName": "tok", "items": [{"key": "bearer", "path": "token"}]}


def test_autoscaling_leaves_replicas_to_the_hpa() -> None:
    md = model(autoscaling=True)
    assert "replicas" not in build_deployment(md, "img", rev="r", replicas=None)["spec"]
    hpa = build_hpa(md)
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"]["name"] == "m"
    assert build_hpa(model()) is None


@pytest.mark.parametrize(
    ("replicas", "autoscaling", "override", "expected"),
    [(1, False, None, 0), (3, False, None, 2), (1, True, None, 0), (3, False, "50%", "50%")],
)
def test_pdb_min_available_derives_from_minimum_replicas(
    replicas: int, autoscaling: bool, override: str | None, expected: int | str
) -> None:
    extra = {"disruption": {"minAvailable": override}} if override else {}
    md = model(replicas=replicas, autoscaling=autoscaling, extra_spec=extra)
    assert build_pdb(md)["spec"]["minAvailable"] == expected


def test_user_scheduling_passes_through() -> None:
    scheduling = {
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        "priorityClassName": "serving",
        "topologySpreadConstraints": [],
    }
    spec = pod_spec(model(extra_spec={"scheduling": copy.deepcopy(scheduling)}))
    assert spec["nodeSelector"] == {"pool": "gpu"}
    assert spec["tolerations"] == scheduling["tolerations"]
    assert spec["priorityClassName"] == "serving"
    assert spec["topologySpreadConstraints"] == []


@pytest.mark.parametrize(
    ("text", "value"), [("30s", 30), ("1m30s", 90), ("250ms", 0.25), ("2h", 7200)]
)
def test_durations(text: str, value: float) -> None:
    assert seconds(text) == value


def test_the_canary_track_has_its_own_name_labels_and_env() -> None:
    deployment = build_deployment(model(), "img", rev="r2", track="canary", replicas=1)
    assert deployment["metadata"]["name"] == "m-canary"
    assert deployment["spec"]["selector"]["matchLabels"][naming.TRACK_LABEL] == "canary"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert (labels[naming.TRACK_LABEL], labels[naming.REVISION_LABEL]) == ("canary", "r2")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELYARD_TRACK"] == "canary"


def test_a_digest_stamps_what_was_applied_and_changes_with_it() -> None:
    one = with_digest(build_deployment(model(), "img", rev="r1", replicas=1))
    two = with_digest(build_deployment(model(), "img", rev="r1", replicas=2))
    assert applied_digest(one)
    assert applied_digest(two)
    assert applied_digest(one) != applied_digest(two)
    assert applied_digest(with_digest(build_deployment(model(), "img", rev="r1", replicas=1))) == (
        applied_digest(one)
    )
    assert applied_digest({}) == ""

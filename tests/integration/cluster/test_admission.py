"""The CRD's structural schema and CEL rules at a real apiserver: bad specs are rejected at
admission with a message that names the field; the examples and `kubectl explain` work."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.base import ROOT
from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest

pytestmark = pytest.mark.cluster


def with_spec(**changes: Any) -> dict[str, Any]:
    manifest = md_manifest("bad")
    spec = copy.deepcopy(manifest["spec"])
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    manifest["spec"] = spec
    return manifest


BAD = [
    pytest.param(with_spec(model__uri=None), "spec.model.uri: Required value", id="missing-uri"),
    pytest.param(
        with_spec(model__uri="ftp://host/model.onnx"),
        "spec.model.uri: Invalid value",
        id="unsupported-scheme",
    ),
    pytest.param(with_spec(model__sha256="abc123"), "spec.model.sha256", id="malformed-sha256"),
    pytest.param(with_spec(model__sha256="A" * 64), "spec.model.sha256", id="uppercase-sha256"),
    pytest.param(with_spec(replicas=0), "spec.replicas", id="zero-replicas"),
    pytest.param(with_spec(replicas=-2), "spec.replicas", id="negative-replicas"),
    pytest.param(
        with_spec(autoscaling={"minReplicas": 5, "maxReplicas": 2, "target": 4}),
        "spec.autoscaling.minReplicas: Invalid value: "
        "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas",
        id="min-above-max",
    ),
    pytest.param(
        with_spec(autoscaling={"maxReplicas": 2, "target": "fast"}),
        "spec.autoscaling.target: Invalid value: autoscaling.target must be a positive quantity",
        id="target-not-a-quantity",
    ),
    pytest.param(
        with_spec(autoscaling={"maxReplicas": 2, "target": 0}),
        "spec.autoscaling.target: Invalid value: autoscaling.target must be a positive quantity",
        id="target-zero",
    ),
    pytest.param(
        with_spec(autoscaling={"maxReplicas": 2, "target": 4, "metric": "cpu"}),
        "spec.autoscaling.metric: Unsupported value",
        id="unknown-metric",
    ),
    pytest.param(
        with_spec(autoscaling={"maxReplicas": 2, "target": 4, "engine": "vpa"}),
        "spec.autoscaling.engine: Unsupported value",
        id="unknown-engine",
    ),
    pytest.param(
        with_spec(
            autoscaling={
                "maxReplicas": 2,
                "target": 4,
                "behavior": {
                    "scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}
                },
            }
        ),
        "spec.autoscaling.behavior.scaleDown.policies[0].value",
        id="zero-policy-value",
    ),
    pytest.param(
        with_spec(runtime={"executionProvider": "directml"}),
        "spec.runtime.executionProvider: Unsupported value",
        id="unknown-provider",
    ),
    pytest.param(
        with_spec(
            runtime={"executionProvider": "cpu"}, resources={"limits": {"nvidia.com/gpu": 1}}
        ),
        "spec.resources: Invalid value: resources ask for a GPU but runtime.executionProvider"
        " is cpu",
        id="gpu-with-cpu-provider",
    ),
    pytest.param(
        with_spec(runtime={"executionProvider": "cpu", "requireGPU": True}),
        "spec.runtime.requireGPU",
        id="require-gpu-with-cpu",
    ),
    pytest.param(
        with_spec(runtime={"shutdownGracePeriod": "30 seconds"}),
        "spec.runtime.shutdownGracePeriod",
        id="bad-duration",
    ),
    pytest.param(
        with_spec(progressDeadline="-5m"), "spec.progressDeadline", id="negative-duration"
    ),
    pytest.param(with_spec(surprise=True), 'unknown field "spec.surprise"', id="unknown-field"),
    pytest.param(
        with_spec(model__uri="file:///models/m.onnx", model__storageSecretRef={"name": "s"}),
        "spec.model.storageSecretRef",
        id="secret-for-file-source",
    ),
    pytest.param(
        with_spec(rollout={"steps": [{"weight": 50}, {"weight": 20}]}),
        "spec.rollout.steps: Invalid value: rollout.steps weights must rise",
        id="falling-weights",
    ),
    pytest.param(
        with_spec(rollout={"steps": [{"weight": 120}]}),
        "spec.rollout.steps[0].weight",
        id="weight-above-100",
    ),
    pytest.param(
        with_spec(rollout={"analysis": {"failureThreshold": 0}}),
        "spec.rollout.analysis.failureThreshold",
        id="zero-threshold",
    ),
    pytest.param(
        with_spec(rollout={"analysis": {"interval": "soon"}}),
        "spec.rollout.analysis.interval",
        id="bad-interval",
    ),
    pytest.param(
        with_spec(rollout={"steps": [{"weight": 10, "pause": "5 minutes"}]}),
        "spec.rollout.steps[0].pause",
        id="bad-pause",
    ),
    pytest.param(
        with_spec(rollout={"analysis": {"metrics": [{"name": "biz", "custom": {"min": 1}}]}}),
        "spec.rollout.analysis.metrics[0].custom.query: Required value",
        id="custom-without-query",
    ),
    pytest.param(
        with_spec(rollout={"analysis": {"metrics": [{"name": "x"}]}}),
        "each analysis metric sets exactly one of errorRate, latency or custom",
        id="metric-of-no-kind",
    ),
    pytest.param(
        with_spec(rollout={"analysis": {"metrics": [{"name": "p", "latency": {}}]}}),
        "a latency check needs max, maxRelativeToStable or both",
        id="latency-without-bound",
    ),
    pytest.param(
        with_spec(rollout={"stepWeight": 30}),
        "rollout.stepWeight and rollout.maxWeight go together",
        id="step-weight-alone",
    ),
    pytest.param(
        with_spec(rollout={"steps": [{"weight": 10}], "stepWeight": 10, "maxWeight": 50}),
        "rollout.steps and rollout.stepWeight/maxWeight/stepPause are exclusive",
        id="steps-and-step-weight",
    ),
    pytest.param(
        with_spec(
            rollout={
                "analysis": {
                    "metrics": [
                        {"name": "a", "errorRate": {"max": 0.1}},
                        {"name": "a", "errorRate": {"max": 0.2}},
                    ]
                }
            }
        ),
        "analysis metric names must be unique",
        id="duplicate-metric-names",
    ),
    pytest.param(
        with_spec(rollout={"strategy": "BlueGreen"}),
        "spec.rollout.strategy: Unsupported value",
        id="unknown-strategy",
    ),
    pytest.param(
        with_spec(model__signature={"publicKeyRef": {"kind": "Pod", "name": "k"}}),
        "spec.model.signature.publicKeyRef.kind: Unsupported value",
        id="public-key-in-a-pod",
    ),
    pytest.param(
        with_spec(model__signature={"publicKeyRef": {}}),
        "spec.model.signature.publicKeyRef.name: Required value",
        id="public-key-without-name",
    ),
    pytest.param(
        with_spec(model__signature={"publicKeyRef": {"name": "k", "key": "../pub"}}),
        "spec.model.signature.publicKeyRef.key",
        id="public-key-bad-key",
    ),
    pytest.param(
        with_spec(model__encryption={}),
        "spec.model.encryption.keySecretRef: Required value",
        id="encryption-without-secret",
    ),
    pytest.param(
        with_spec(networkPolicy={"inferenceFrom": [{}]}),
        "a peer is an ipBlock alone, or a namespaceSelector and/or a podSelector",
        id="empty-peer",
    ),
    pytest.param(
        with_spec(
            networkPolicy={
                "inferenceFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]
            }
        ),
        "a peer is an ipBlock alone",
        id="ip-block-with-selector",
    ),
    pytest.param(
        with_spec(
            networkPolicy={
                "inferenceFrom": [
                    {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}
                ]
            }
        ),
        "In and NotIn need values",
        id="in-without-values",
    ),
    pytest.param(
        with_spec(networkPolicy={"monitoringNamespace": "Not_A_Namespace"}),
        "spec.networkPolicy.monitoringNamespace",
        id="bad-monitoring-namespace",
    ),
]


@pytest.mark.parametrize(("manifest", "message"), BAD)
def test_bad_spec_is_rejected_naming_the_field(
    installed: LocalCluster, namespace: str, manifest: dict[str, Any], message: str
) -> None:
    result = installed.kubectl(
        "-n", namespace, "create", "--validate=strict", "-f", "-",
        input=json.dumps(manifest), check=False,
    )  # fmt: skip
    assert result.returncode != 0, "the apiserver accepted a bad spec"
    assert message in result.stderr, result.stderr


def test_defaults_are_filled_in_by_the_apiserver(installed: LocalCluster, namespace: str) -> None:
    installed.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(md_manifest("dflt")))
    spec = json.loads(
        installed.kubectl("-n", namespace, "get", "mdep", "dflt", "-o", "json").stdout
    )["spec"]
    assert spec["replicas"] == 1
    assert spec["runtime"]["executionProvider"] == "auto"
    assert spec["runtime"]["batching"]["maxBatchSize"] == 64
    assert spec["runtime"]["warmup"]["batchSizes"] == [1]
    assert spec["rollout"]["strategy"] == "Canary"
    assert spec["rollout"]["analysis"] == {"failureThreshold": 3, "interval": "30s",
                                           "minSampleCount": 50}  # fmt: skip


@pytest.mark.parametrize(
    "example", sorted((ROOT / "manifests" / "examples").glob("*.yaml")), ids=lambda p: p.name
)
def test_examples_are_accepted(installed: LocalCluster, namespace: str, example: Path) -> None:
    installed.kubectl("-n", namespace, "create", "--dry-run=server", "-f", str(example))


def test_kubectl_explain_describes_fields(installed: LocalCluster) -> None:
    explained = " ".join(installed.kubectl("explain", "mdep.spec.model.uri").stdout.split())
    assert "s3://bucket/key" in explained
    assert "The fetch init container downloads it" in explained

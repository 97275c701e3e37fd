"""The controller with the trust settings: the operator's NetworkPolicy default, a spec that
turns the policy off, and the Secrets of encrypted and signed models, over ``FakeKube``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from hack.testbed.manifests import md_manifest
from modelyard_operator.config import OperatorConfig
from modelyard_operator.controller.sync import Controller
from modelyard_operator.k8s.fake import FakeKube
from tests.unit.operator.controller.test_sync import KEY, Cluster

POLICY_ON = OperatorConfig(
    default_runtime_image="img:1", network_policy_default=True, monitoring_namespace="prom"
)


@dataclasses.dataclass
class PolicyCluster(Cluster):
    """An operator configured as the Helm chart does: a NetworkPolicy for every object."""

    def new_controller(self) -> Controller:
        return Controller(config=POLICY_ON, client=self.kube, view=self.view(),
                          source=self.source, clock=lambda: self.now)  # fmt: skip


def cluster_with(**model: Any) -> PolicyCluster:
    kube = FakeKube()
    manifest = md_manifest("m", replicas=1)
    manifest["spec"]["model"].update(model)
    manifest["metadata"].update(namespace="ns", uid="u1", generation=1)
    kube.put(manifest)
    return PolicyCluster(kube)


def condition(cluster: Cluster, type_: str) -> tuple[str, str]:
    found = next(c for c in cluster.md()["status"]["conditions"] if c["type"] == type_)
    return found["status"], found["reason"]


async def test_the_operator_default_applies_a_policy_and_a_spec_can_drop_it() -> None:
    cluster = cluster_with()
    await cluster.sync(on_spec=True)
    (policy,) = cluster.kube.of_kind("NetworkPolicy")
    assert policy["metadata"]["name"] == "m"
    metrics_rule = policy["spec"]["ingress"][1]
    assert metrics_rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "prom"}  # fmt: skip
    (deployment,) = cluster.kube.of_kind("Deployment")
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert "metrics" in {p["name"] for p in ports}
    assert cluster.md()["spec"].get("networkPolicy") is None  # the spec is never written

    cluster.edit(networkPolicy={"enabled": False})
    await cluster.sync(on_spec=True)
    assert cluster.kube.of_kind("NetworkPolicy") == []
    assert ("delete", "NetworkPolicy", "m") in cluster.writes("delete")
    (deployment,) = cluster.kube.of_kind("Deployment")
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert "metrics" not in {p["name"] for p in ports}


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"encryption": {"keySecretRef": {"name": "model-key"}}},
         "spec.model.encryption.keySecretRef"),
        ({"signature": {"publicKeyRef": {"kind": "Secret", "name": "pub"}}},
         "spec.model.signature.publicKeyRef"),
    ],
)  # fmt: skip
async def test_a_missing_key_secret_is_named(model: dict[str, Any], field: str) -> None:
    cluster = cluster_with(**model)
    await cluster.sync(on_spec=True)
    assert condition(cluster, "Ready") == ("False", "SecretNotFound")
    ready = next(c for c in cluster.md()["status"]["conditions"] if c["type"] == "Ready")
    assert field in ready["message"]


async def test_a_secret_without_the_key_is_named() -> None:
    cluster = cluster_with(encryption={"keySecretRef": {"name": "model-key", "key": "aes"}})
    cluster.kube.put({"kind": "Secret", "metadata": {"name": "model-key", "namespace": "ns"},
                      "data": {"other": "eA=="}})  # fmt: skip
    await cluster.sync(on_spec=True)
    assert condition(cluster, "Ready") == ("False", "SecretKeyNotFound")


async def test_a_public_key_in_a_config_map_is_left_to_the_pod() -> None:
    cluster = cluster_with(signature={"publicKeyRef": {"name": "pub"}})
    await cluster.sync(on_spec=True)
    # The operator may not read ConfigMaps and does not look: no problem before a pod runs.
    assert cluster.controller.memory.problems[KEY] is None
    assert condition(cluster, "Ready") == ("False", "Pending")

"""The rendered pods of signed and encrypted models, and the NetworkPolicy: keys reach only the
container that uses them; the policy admits only what the spec allows."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.reconcile import naming
from modelyard_operator.reconcile.children import stale_kinds, static_children
from modelyard_operator.reconcile.deployment import build_deployment
from modelyard_operator.reconcile.network import (
    NETWORK_POLICY,
    build_network_policy,
    with_network_defaults,
)
from modelyard_operator.reconcile.observed import pod_failure
from modelyard_runtime.contract.names import DEPLOYMENT_LABEL
from modelyard_runtime.settings import settings_from
from tests.unit.operator.builders import crashed, deployment, model, pod, step

SIGNED = {"signature": {"publicKeyRef": {"name": "release-key"}}}
ENCRYPTED = {"encryption": {"keySecretRef": {"name": "model-key"}}}


def with_model(**fields: Any) -> ModelDeployment:
    md = model(sha256="a" * 64)
    spec = md.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    spec["model"].update(fields)
    return ModelDeployment.model_validate({**md.model_dump(by_alias=True), "spec": spec})


def template(md: ModelDeployment) -> dict[str, Any]:
    return dict(build_deployment(md, "img", rev="r1", replicas=1)["spec"]["template"])


def containers(md: ModelDeployment) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = template(md)["spec"]
    return spec["initContainers"][0], spec["containers"][0]


def mounted(container: dict[str, Any]) -> set[str]:
    return {m["name"] for m in container["volumeMounts"]}


def volume(md: ModelDeployment, name: str) -> dict[str, Any]:
    (found,) = [v for v in template(md)["spec"]["volumes"] if v["name"] == name]
    return dict(found)


def test_public_key_reaches_only_the_fetch_container() -> None:
    md = with_model(**SIGNED)
    fetch, runtime = containers(md)
    assert fetch["args"][-2:] == ["--public-key", "/var/run/secrets/modelyard/signing/public.pem"]
    assert "signing-key" in mounted(fetch)
    assert "signing-key" not in mounted(runtime)
    assert volume(md, "signing-key") == {
        "name": "signing-key",
        "configMap": {"name": "release-key", "items": [{"key": "public.pem", "path": "public.pem"}],
                      "optional": True},
    }  # fmt: skip


def test_public_key_in_a_secret() -> None:
    md = with_model(signature={"publicKeyRef": {"kind": "Secret", "name": "k", "key": "ed.pub"}})
    assert volume(md, "signing-key")["secret"] == {
        "secretName": "k", "items": [{"key": "ed.pub", "path": "public.pem"}], "optional": True,
    }  # fmt: skip


def test_decryption_key_reaches_only_the_runtime_container() -> None:
    md = with_model(**ENCRYPTED)
    fetch, runtime = containers(md)
    assert "model-key" in mounted(runtime)
    assert "model-key" not in mounted(fetch)
    assert "--public-key" not in fetch["args"]
    env = {e["name"]: e.get("value") for e in runtime["env"]}
    assert env["MODELYARD_MODEL_KEY_FILE"] == "/var/run/secrets/modelyard/model-key/key"
    assert not any("KEY" in e["name"] for e in fetch.get("env", []))
    assert volume(md, "model-key")["secret"] == {
        "secretName": "model-key", "items": [{"key": "key", "path": "key"}], "defaultMode": 0o440,
    }  # fmt: skip


def test_plain_models_get_no_key_volumes() -> None:
    md = model()
    fetch, runtime = containers(md)
    names = {v["name"] for v in template(md)["spec"]["volumes"]}
    assert not names & {"signing-key", "model-key"}
    assert "--public-key" not in fetch["args"]
    assert "MODELYARD_MODEL_KEY_FILE" not in {e["name"] for e in runtime["env"]}


def test_revisions_of_existing_specs_do_not_change() -> None:
    md = model(sha256="a" * 64)
    spec = md.spec
    material = {
        "model": {"uri": spec.model.uri, "version": "v1", "sha256": "a" * 64,
                  "storageSecretRef": None},
        "runtime": spec.runtime.model_dump(mode="json", by_alias=True),
        "resources": spec.resources.model_dump(mode="json", by_alias=True),
        "image": "img",
    }  # fmt: skip
    before = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:10]
    assert naming.revision(md, "img") == before
    assert naming.revision(with_model(**SIGNED), "img") != before
    assert naming.revision(with_model(**ENCRYPTED), "img") not in {
        before, naming.revision(with_model(**SIGNED), "img")}  # fmt: skip


def network(md: ModelDeployment, *, default: bool = True) -> ModelDeployment:
    return with_network_defaults(md, enabled=default, monitoring_namespace="monitoring")


def test_no_policy_and_metrics_on_the_http_port_by_default() -> None:
    md = network(model(), default=False)
    assert build_network_policy(md) is None
    assert NETWORK_POLICY in stale_kinds(md)
    runtime = containers(md)[1]
    assert [p["name"] for p in runtime["ports"]] == ["http", "grpc"]
    assert "MODELYARD_METRICS_PORT" not in {e["name"] for e in runtime["env"]}
    assert "annotations" not in template(md)["metadata"]


def test_the_policy_admits_inference_from_the_namespace_and_metrics_from_monitoring() -> None:
    md = network(model())
    policy = build_network_policy(md)
    assert policy is not None
    assert policy in static_children(md)
    assert NETWORK_POLICY not in stale_kinds(md)
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {DEPLOYMENT_LABEL: "m"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"podSelector": {}}],
             "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 8081, "protocol": "TCP"}]},
            {"from": [{"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
             "ports": [{"port": 8082, "protocol": "TCP"}]},
        ],
    }  # fmt: skip
    # It selects both tracks' pods, and nothing else's.
    stable, canary = (build_deployment(md, "img", rev="r", track=t, replicas=1) for t in
                      ("stable", "canary"))  # fmt: skip
    for obj in (stable, canary):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert labels.items() >= policy["spec"]["podSelector"]["matchLabels"].items()


def test_with_a_policy_metrics_move_to_their_own_port() -> None:
    md = network(model())
    runtime = containers(md)[1]
    assert {"name": "metrics", "containerPort": 8082, "protocol": "TCP"} in runtime["ports"]
    env = {e["name"]: e.get("value") for e in runtime["env"]}
    assert env["MODELYARD_METRICS_PORT"] == "8082"
    assert template(md)["metadata"]["annotations"] == {
        "prometheus.io/path": "/metrics", "prometheus.io/port": "8082",
        "prometheus.io/scrape": "true",
    }  # fmt: skip


def policy_of(network_policy: dict[str, Any]) -> dict[str, Any]:
    md = network(model(extra_spec={"networkPolicy": network_policy}), default=False)
    policy = build_network_policy(md)
    assert policy is not None
    return dict(policy["spec"])


def test_allowed_peers_are_rendered_as_the_spec_says() -> None:
    spec = policy_of({
        "enabled": True,
        "inferenceFrom": [
            {"namespaceSelector": {"matchLabels": {"team": "fraud"}},
             "podSelector": {"matchExpressions": [{"key": "app", "operator": "In",
                                                   "values": ["api"]}]}},
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
        ],
        "monitoringNamespace": "observability",
    })  # fmt: skip
    inference, metrics = spec["ingress"]
    assert inference["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "fraud"}},
         "podSelector": {"matchExpressions": [{"key": "app", "operator": "In",
                                               "values": ["api"]}]}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
    ]  # fmt: skip
    assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "observability"}  # fmt: skip


def test_an_empty_allow_list_admits_no_inference_at_all() -> None:
    spec = policy_of({"enabled": True, "inferenceFrom": []})
    assert [rule["ports"][0]["port"] for rule in spec["ingress"]] == [8082]
    assert all(rule["from"] for rule in spec["ingress"])  # never an empty `from` (= everyone)


def test_the_spec_wins_over_the_operator_default() -> None:
    off = network(model(extra_spec={"networkPolicy": {"enabled": False}}), default=True)
    assert build_network_policy(off) is None
    assert not network(model(), default=False).spec.network_policy.enabled


@pytest.mark.parametrize(
    ("stage", "reason"), [("signature", "SignatureInvalid"), ("decrypt", "DecryptFailed")]
)
def test_trust_failures_are_model_verified_false(stage: str, reason: str) -> None:
    failing = pod(ready=False, initContainerStatuses=[crashed("fetch", f"{stage}: it failed")])
    assert pod_failure(failing) is not None
    status = step(with_model(**SIGNED), deployment(ready=0), [failing])[0]
    verified = next(c for c in status.conditions if c.type == "ModelVerified")
    assert (verified.status, verified.reason) == ("False", reason)
    assert verified.message == f"{stage}: it failed"
    assert status.phase == "Failed"


def test_a_verified_signature_is_reported() -> None:
    status = step(with_model(**SIGNED), deployment(), [pod(), pod("p2")])[0]
    verified = next(c for c in status.conditions if c.type == "ModelVerified")
    assert (verified.status, verified.reason) == ("True", "SignatureVerified")
    assert "ConfigMap 'release-key'" in verified.message


def test_the_runtime_parses_what_the_operator_renders() -> None:
    md = network(with_model(**ENCRYPTED))
    runtime = containers(md)[1]
    env = {e["name"]: e["value"] for e in runtime["env"] if "value" in e}
    settings = settings_from(None, env)
    assert settings.model_key_file == "/var/run/secrets/modelyard/model-key/key"
    assert settings.metrics_port == 8082
    mount = next(m for m in runtime["volumeMounts"] if m["name"] == "model-key")
    assert settings.model_key_file.startswith(mount["mountPath"] + "/")

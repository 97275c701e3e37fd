"""Tier D: signed and encrypted models on real pods (``Dockerfile.runtime``, a real kubelet and
containerd), reconciled by the operator as its ServiceAccount.

Two ModelDeployments start together: one whose model was changed after it was signed never
becomes Ready and shows ``ModelVerified=False SignatureInvalid``; one signed and encrypted, with
its NetworkPolicy on, serves from a model decrypted in the pod's memory, with /metrics on its own
port. The node's CNI (the plain ``bridge`` plugin) does not enforce NetworkPolicy, so the policy is
checked as an API object in test_trust.py, not by traffic here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.onnx_models import tiny_model
from hack.testbed.operator import OperatorProcess
from modelyard_runtime.contract import sealing, signing
from tests.integration.cluster.test_real_node import ROW, infer
from tests.support.kube import condition, eventually, get
from tests.support.realnode import on_real_node, running_pods, sha256

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def sign(path: Path, private_pem: bytes) -> None:
    key = signing.load_private_key(private_pem)
    statement = signing.sign(key, sha256=sha256(path), size=path.stat().st_size)
    path.with_name(path.name + signing.SUFFIX).write_bytes(statement.to_json())


def apply(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))


def test_signed_and_encrypted_models_on_real_pods(
    cluster: LocalCluster,
    namespace: str,
    operator: OperatorProcess,
    runtime_image: str,
    model_store: tuple[Path, str],
) -> None:
    store, url = model_store
    private_pem, public_pem = signing.generate()
    key = sealing.generate_key()
    cluster.kubectl("-n", namespace, "create", "configmap", "release-key",
                    f"--from-literal=public.pem={public_pem.decode()}")  # fmt: skip
    secret = store.parent / "model-key"
    secret.write_bytes(sealing.encode_key(key))
    cluster.kubectl("-n", namespace, "create", "secret", "generic", "model-key",
                    f"--from-file=key={secret}")  # fmt: skip
    trusted = {"signature": {"publicKeyRef": {"name": "release-key"}}}

    # Signed, then replaced by another model: the signature no longer covers it.
    tampered = tiny_model(store / "tampered.onnx", 2.0)
    sign(tampered, private_pem)
    tiny_model(tampered, 5.0)
    bad = on_real_node("tampered", f"{url}/tampered.onnx", "", runtime_image, "v1")
    bad["spec"]["model"].update(trusted)

    # Encrypted, then signed (the fetch step checks what it downloads, without the key).
    plain = tiny_model(store.parent / "plain.onnx", 3.0)
    sealed = store / "sealed.onnx.enc"
    with plain.open("rb") as source, sealed.open("wb") as sink:
        sealing.encrypt(source, sink, key)
    sign(sealed, private_pem)
    good = on_real_node("sealed", f"{url}/sealed.onnx.enc", sha256(sealed), runtime_image, "v1")
    good["spec"]["model"].update(trusted, encryption={"keySecretRef": {"name": "model-key"}})
    good["spec"]["networkPolicy"] = {"enabled": True}

    apply(cluster, namespace, bad)
    apply(cluster, namespace, good)

    def verified(name: str) -> dict[str, Any]:
        return condition(get(cluster, namespace, "modeldeployment", name), "ModelVerified")

    eventually(lambda: verified("tampered").get("reason") == "SignatureInvalid", timeout=120,
               what="ModelVerified=False SignatureInvalid")  # fmt: skip
    refused = verified("tampered")
    assert refused["status"] == "False"
    assert "the model changed after it was signed" in refused["message"]
    md = get(cluster, namespace, "modeldeployment", "tampered")
    assert condition(md, "Ready")["status"] == "False"
    assert running_pods(cluster, namespace, "tampered") == []  # stuck in its init container

    eventually(lambda: condition(get(cluster, namespace, "modeldeployment", "sealed"),
                                 "Ready").get("status") == "True",
               timeout=120, what="the encrypted model Ready")  # fmt: skip
    assert verified("sealed")["reason"] == "SignatureVerified"
    (pod,) = running_pods(cluster, namespace, "sealed")
    ip = pod["status"]["podIP"]
    assert infer(ip, "sealed") == [3 * v for v in ROW]
    with urllib.request.urlopen(f"http://{ip}:8082/metrics", timeout=10) as response:
        assert "modelyard_model_info{" in response.read().decode()
    with pytest.raises(urllib.error.HTTPError) as on_http:
        urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=10)
    on_http.value.close()
    assert on_http.value.code == 404

    # The keys went where they are used, and no ServiceAccount token went anywhere.
    spec = pod["spec"]
    (fetch,), (runtime,) = spec["initContainers"], spec["containers"]
    assert {m["name"] for m in fetch["volumeMounts"]} >= {"signing-key"}
    assert "model-key" not in {m["name"] for m in fetch["volumeMounts"]}
    assert "signing-key" not in {m["name"] for m in runtime["volumeMounts"]}
    assert spec["automountServiceAccountToken"] is False
    mounts = [m["mountPath"] for c in (fetch, runtime) for m in c["volumeMounts"]]
    assert not [m for m in mounts if m.startswith("/var/run/secrets/kubernetes.io")]
    logs = cluster.kubectl("-n", namespace, "logs", pod["metadata"]["name"], "-c", "fetch").stdout
    assert "signature verified" in logs
    assert get(cluster, namespace, "networkpolicy", "sealed") is not None

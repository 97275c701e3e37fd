"""The env the operator renders is exactly what the runtime parses (design §3)."""

from __future__ import annotations

from typing import Any

from hack.testbed.manifests import md_manifest
from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.reconcile.deployment import build_deployment
from modelyard_runtime.settings import settings_from


def rendered_env(spec: dict[str, Any]) -> dict[str, str]:
    manifest = md_manifest("fraud", sha256="b" * 64, extra_spec=spec)
    manifest["metadata"].update(namespace="risk", uid="u")
    md = ModelDeployment.model_validate(manifest)
    container = build_deployment(md, "img", rev="r9", replicas=1)["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    refs = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in container["env"]
        if "valueFrom" in e
    }
    assert refs == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    return env


def test_runtime_parses_the_rendered_env_into_the_spec_values() -> None:
    env = rendered_env(
        {
            "runtime": {
                "executionProvider": "cuda",
                "requireGPU": True,
                "batching": {"maxBatchSize": 16, "maxQueueDelayMs": 2.5, "maxQueueSize": 50,
                             "timeoutMs": 900},
                "warmup": {"batchSizes": [8, 1, 8]},
                "intraOpThreads": 2,
                "inferenceWorkers": 3,
                "processes": 2,
                "shutdownGracePeriod": "1m",
                "logLevel": "DEBUG",
            },
            "auth": {"tokenSecretRef": {"name": "t"}},
        }
    )  # fmt: skip
    settings = settings_from(None, {**env, "POD_NAME": "p", "POD_NAMESPACE": "risk"})
    assert settings.model_path == "/models/model.onnx"
    assert settings.served_name == "fraud"
    assert (settings.model_version, settings.model_sha256) == ("v1", "b" * 64)
    assert (settings.revision, settings.track) == ("r9", "stable")
    assert (settings.execution_provider, settings.require_gpu) == ("cuda", True)
    assert (settings.max_batch_size, settings.max_queue_delay_ms) == (16, 2.5)
    assert (settings.max_queue_size, settings.request_timeout_ms) == (50, 900)
    assert settings.warmup == (1, 8)
    assert (settings.intra_op_threads, settings.inference_workers) == (2, 3)
    assert settings.processes == 2
    assert settings.shutdown_grace_seconds == 60
    assert settings.log_level == "DEBUG"
    assert settings.auth_token_file == "/var/run/secrets/modelyard/auth/token"
    assert settings.termination_log == "/dev/termination-log"


def test_user_env_is_appended_and_defaults_stay_out() -> None:
    env = rendered_env({"runtime": {"env": [{"name": "OMP_NUM_THREADS", "value": "1"}]}})
    assert env["OMP_NUM_THREADS"] == "1"
    assert "MODELYARD_MAX_BATCH_SIZE" not in env  # the runtime's default is the CRD's default

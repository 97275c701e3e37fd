"""The runtime Deployment: fetch init container, runtime container, probes, security, scheduling.

Pure and deterministic: the same ModelDeployment and image give the same dict, key for key, so
server-side apply of an unchanged spec changes nothing. The pod passes PodSecurity ``restricted``.
Keys go only where they are used: a signed model's public key into the fetch container, an
encrypted model's key into the runtime container (never the other way round).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from modelyard_operator.api.v1alpha1 import ModelDeployment, seconds
from modelyard_operator.reconcile import naming
from modelyard_operator.reconcile.network import pod_annotations, uses_metrics_port
from modelyard_runtime.contract.names import METRICS_PORT
from modelyard_runtime.settings import Settings, to_env

MODEL_DIR: Final = "/models"
MODEL_PATH: Final = f"{MODEL_DIR}/model.onnx"
PVC_MOUNT: Final = "/mnt/source"
AUTH_MOUNT: Final = "/var/run/secrets/modelyard/auth"
SIGNING_MOUNT: Final = "/var/run/secrets/modelyard/signing"  # the public key (fetch only)
PUBLIC_KEY_PATH: Final = f"{SIGNING_MOUNT}/public.pem"
MODEL_KEY_MOUNT: Final = "/var/run/secrets/modelyard/model-key"  # decryption key (runtime only)
MODEL_KEY_PATH: Final = f"{MODEL_KEY_MOUNT}/key"
RUN_AS_USER: Final = 65532
GPU_PREFIXES: Final = ("nvidia.com/gpu", "nvidia.com/mig-")

Object = dict[str, Any]


def wants_gpu(md: ModelDeployment) -> bool:
    keys = {*md.spec.resources.limits, *md.spec.resources.requests}
    return any(key.startswith(GPU_PREFIXES) for key in keys)


def runtime_env(md: ModelDeployment, *, rev: str, track: str) -> list[Object]:
    """The env the runtime parses (design §3), through the runtime's own ``to_env``."""
    runtime, batching = md.spec.runtime, md.spec.runtime.batching
    settings = Settings(
        model_path=MODEL_PATH,
        model_name=naming.model_name(md),
        model_version=md.spec.model.version,
        model_sha256=md.spec.model.sha256 or "",
        revision=rev,
        track=track,
        execution_provider=runtime.execution_provider,
        require_gpu=runtime.require_gpu,
        max_batch_size=batching.max_batch_size,
        max_queue_delay_ms=batching.max_queue_delay_ms,
        max_queue_size=batching.max_queue_size,
        request_timeout_ms=batching.timeout_ms,
        intra_op_threads=runtime.intra_op_threads,
        inference_workers=runtime.inference_workers,
        processes=runtime.processes,
        warmup=tuple(sorted(set(runtime.warmup.batch_sizes))),
        auth_token_file=f"{AUTH_MOUNT}/token" if md.spec.auth else "",
        model_key_file=MODEL_KEY_PATH if md.spec.model.encryption else "",
        metrics_port=METRICS_PORT if uses_metrics_port(md) else None,
        termination_log="/dev/termination-log",
        shutdown_grace_seconds=seconds(runtime.shutdown_grace_period),
        drain_delay_seconds=seconds(runtime.drain_delay),
        max_connection_age_seconds=seconds(runtime.max_connection_age),
        log_level=runtime.log_level,
    )
    env: list[Object] = [{"name": k, "value": v} for k, v in to_env(settings).items()]
    # The model name must stay the ModelDeployment's even when it equals the file's stem.
    if not any(e["name"] == "MODELYARD_MODEL_NAME" for e in env):
        env.append({"name": "MODELYARD_MODEL_NAME", "value": settings.model_name})
    env += [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    env += [{"name": e.name, "value": e.value} for e in runtime.env]
    return sorted(env, key=lambda e: str(e["name"]))


# The root filesystem is read-only: /tmp is a volume (TensorRT's engine cache, libraries' scratch).
TMP_MOUNT: Object = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108


def _security_context() -> Object:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def fetch_source(md: ModelDeployment) -> tuple[str, list[Object], list[Object]]:
    """(source the fetch container reads, its extra volume mounts, extra pod volumes)."""
    uri = md.spec.model.uri
    if uri.startswith("pvc://"):
        parts = urlsplit(uri)
        claim, path = parts.netloc, parts.path.lstrip("/")
        mount = {"name": "source", "mountPath": PVC_MOUNT, "readOnly": True}
        volume = {"name": "source", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        return f"file://{PVC_MOUNT}/{path}", [mount], [volume]
    return uri, [], []


def fetch_container(md: ModelDeployment, image: str) -> Object:
    source, mounts, _ = fetch_source(md)
    args = ["fetch", "--uri", source, "--out", MODEL_PATH]
    if md.spec.model.sha256:
        args += ["--sha256", md.spec.model.sha256]
    if md.spec.model.signature:
        args += ["--public-key", PUBLIC_KEY_PATH]
        mounts = [*mounts, {"name": "signing-key", "mountPath": SIGNING_MOUNT, "readOnly": True}]
    container: Object = {
        "name": "fetch",
        "image": image,
        "imagePullPolicy": md.spec.runtime.image_pull_policy,
        "args": args,
        "securityContext": _security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "model", "mountPath": MODEL_DIR}, {**TMP_MOUNT}, *mounts],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }
    if md.spec.model.storage_secret_ref:
        container["envFrom"] = [{"secretRef": {"name": md.spec.model.storage_secret_ref.name}}]
    return container


def runtime_container(md: ModelDeployment, image: str, *, rev: str, track: str) -> Object:
    mounts: list[Object] = [
        {"name": "model", "mountPath": MODEL_DIR, "readOnly": True},
        {**TMP_MOUNT},
    ]
    if md.spec.auth:
        mounts.append({"name": "auth", "mountPath": AUTH_MOUNT, "readOnly": True})
    if md.spec.model.encryption:
        mounts.append({"name": "model-key", "mountPath": MODEL_KEY_MOUNT, "readOnly": True})
    ports: list[Object] = [
        {"name": "http", "containerPort": naming.HTTP_PORT, "protocol": "TCP"},
        {"name": "grpc", "containerPort": naming.GRPC_PORT, "protocol": "TCP"},
    ]
    if uses_metrics_port(md):
        ports.append({"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"})
    resources: Object = {}
    if md.spec.resources.requests:
        resources["requests"] = dict(sorted(md.spec.resources.requests.items()))
    if md.spec.resources.limits:
        resources["limits"] = dict(sorted(md.spec.resources.limits.items()))
    return {
        "name": "runtime",
        "image": image,
        "imagePullPolicy": md.spec.runtime.image_pull_policy,
        "args": ["serve"],
        "env": runtime_env(md, rev=rev, track=track),
        "ports": ports,
        "startupProbe": _probe("/v2/health/live", period=2, failures=150),
        "livenessProbe": _probe("/v2/health/live", period=10, failures=3),
        "readinessProbe": _probe("/v2/health/ready", period=2, failures=2),
        "resources": resources,
        "securityContext": _security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    }


def _probe(path: str, *, period: int, failures: int) -> Object:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def key_volumes(md: ModelDeployment) -> list[Object]:
    """The public key of a signed model and the key of an encrypted one, as pod volumes."""
    volumes: list[Object] = []
    signature = md.spec.model.signature
    if signature:
        ref = signature.public_key_ref
        # Optional: a missing ConfigMap (which the operator may not read) reaches the fetch
        # container as a missing file, reported as a SignatureInvalid stage, not a stuck pod.
        items = [{"key": ref.key, "path": "public.pem"}]
        if ref.kind == "ConfigMap":
            source = {"configMap": {"name": ref.name, "items": items, "optional": True}}
        else:
            source = {"secret": {"secretName": ref.name, "items": items, "optional": True}}
        volumes.append({"name": "signing-key", **source})
    encryption = md.spec.model.encryption
    if encryption:
        key_ref = encryption.key_secret_ref
        secret = {
            "secretName": key_ref.name,
            "items": [{"key": key_ref.key, "path": "key"}],
            "defaultMode": 0o440,
        }
        volumes.append({"name": "model-key", "secret": secret})
    return volumes


def pod_spec(md: ModelDeployment, image: str, *, rev: str, track: str) -> Object:
    _, _, source_volumes = fetch_source(md)
    volumes: list[Object] = [
        {"name": "model", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}, *source_volumes,
    ]  # fmt: skip
    if md.spec.auth:
        ref = md.spec.auth.token_secret_ref
        volumes.append(
            {
                "name": "auth",
                "secret": {"secretName": ref.name, "items": [{"key": ref.key, "path": "token"}]},
            }
        )
    volumes += key_volumes(md)
    scheduling = md.spec.scheduling
    tolerations = list(scheduling.tolerations)
    if wants_gpu(md) and not any(t.get("key") == "nvidia.com/gpu" for t in tolerations):
        tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    spread = scheduling.topology_spread_constraints
    if spread is None:
        spread = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": naming.selector_labels(md, track)},
            }
        ]
    grace = seconds(md.spec.runtime.shutdown_grace_period)
    spec: Object = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "initContainers": [fetch_container(md, image)],
        "containers": [runtime_container(md, image, rev=rev, track=track)],
        "securityContext": {
            "fsGroup": RUN_AS_USER,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": int(grace) + 5,
        "topologySpreadConstraints": spread,
        "volumes": volumes,
    }
    if scheduling.node_selector:
        spec["nodeSelector"] = dict(sorted(scheduling.node_selector.items()))
    if tolerations:
        spec["tolerations"] = tolerations
    if scheduling.affinity:
        spec["affinity"] = scheduling.affinity
    if scheduling.priority_class_name:
        spec["priorityClassName"] = scheduling.priority_class_name
    return spec


def build_deployment(
    md: ModelDeployment, image: str, *, rev: str, track: str = "stable", replicas: int | None
) -> Object:
    """The track's Deployment of revision ``rev``; ``replicas`` None leaves the count to an
    autoscaler (the field is then not applied, so the operator never fights it)."""
    name = naming.deployment_name(md, track)
    spec: Object = {
        "selector": {"matchLabels": naming.selector_labels(md, track)},
        "progressDeadlineSeconds": max(1, int(seconds(md.spec.progress_deadline))),
        "revisionHistoryLimit": 3,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"labels": naming.pod_labels(md, track=track, rev=rev)},
            "spec": pod_spec(md, image, rev=rev, track=track),
        },
    }
    annotations = pod_annotations(md)
    if annotations:
        spec["template"]["metadata"]["annotations"] = annotations
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": md.metadata.namespace,
            "labels": {**naming.common_labels(md), naming.TRACK_LABEL: track},
            "ownerReferences": [naming.owner_reference(md)],
        },
        "spec": spec,
    }

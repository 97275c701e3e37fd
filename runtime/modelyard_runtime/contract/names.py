"""Names shared across the runtime, the operator, the CLI, dashboards and alerts (design §2 to §5).

Pure constants. A test ties each list to the code that uses it (the termination-log stages to the
status reasons, the metric names to the runtime's registry), so renaming one side fails fast.
"""

from __future__ import annotations

from typing import Final, Literal

GROUP: Final = "serving.modelyard.io"

# -- startup stages ---------------------------------------------------------------------------
# A pod that cannot start writes one line ``stage: reason`` to its termination log; the operator
# shows ``STAGE_REASONS[stage]`` in the ModelDeployment's status.
Stage = Literal[
    "download", "verify", "signature", "decrypt", "load", "provider", "warmup", "settings",
    "listen", "serve",
]  # fmt: skip
STAGE_REASONS: Final[dict[str, str]] = {
    "download": "DownloadFailed",  # fetch: the source cannot be read
    "verify": "DigestMismatch",  # fetch or serve: the sha256 is not the declared one
    "signature": "SignatureInvalid",  # fetch: the signature is missing, bad, or by another key
    "decrypt": "DecryptFailed",  # serve: the encrypted model cannot be decrypted with its key
    "load": "LoadFailed",  # onnxruntime cannot load the file
    "provider": "ProviderFailed",  # the requested GPU provider cannot run the model
    "warmup": "WarmupFailed",  # a warm-up batch failed
    "settings": "InvalidSettings",  # an env value or the auth token file is invalid
    "listen": "ListenFailed",  # a port cannot be bound
    "serve": "ServeFailed",  # a server process of the group died or could not start
}
# Stages that are about the model file itself (ModelVerified=False).
MODEL_STAGES: Final = frozenset({"download", "verify", "signature", "decrypt"})

# -- labels and ports (design §3) -------------------------------------------------------------
DEPLOYMENT_LABEL: Final = f"{GROUP}/deployment"
TRACK_LABEL: Final = f"{GROUP}/track"
REVISION_LABEL: Final = f"{GROUP}/revision"
VERSION_LABEL: Final = f"{GROUP}/model-version"
ACTION_ANNOTATION: Final = f"{GROUP}/action"
TRACKS: Final = ("stable", "canary")
HTTP_PORT: Final = 8080
GRPC_PORT: Final = 8081
# /metrics on its own port, so a NetworkPolicy can let only the monitoring namespace scrape it
# (the runtime's MODELYARD_METRICS_PORT; unset, /metrics stays on the HTTP port).
METRICS_PORT: Final = 8082

# -- runtime metrics (design §5): the names analysis, autoscaling, dashboards and alerts query --
METRIC_LABELS: Final = ("model", "version", "revision", "track")
REQUESTS_TOTAL: Final = "modelyard_requests_total"
REQUEST_DURATION: Final = "modelyard_request_duration_seconds"
QUEUE_DURATION: Final = "modelyard_queue_duration_seconds"
COMPUTE_DURATION: Final = "modelyard_compute_duration_seconds"
BATCH_SIZE: Final = "modelyard_batch_size"
REQUESTS_IN_FLIGHT: Final = "modelyard_requests_in_flight"
QUEUE_DEPTH: Final = "modelyard_queue_depth"
REJECTED_TOTAL: Final = "modelyard_rejected_requests_total"
MODEL_INFO: Final = "modelyard_model_info"
MODEL_LOAD_DURATION: Final = "modelyard_model_load_duration_seconds"
RUNTIME_METRICS: Final = (
    REQUESTS_TOTAL, REQUEST_DURATION, QUEUE_DURATION, COMPUTE_DURATION, BATCH_SIZE,
    REQUESTS_IN_FLIGHT, QUEUE_DEPTH, REJECTED_TOTAL, MODEL_INFO, MODEL_LOAD_DURATION,
)  # fmt: skip

# -- autoscaling: spec.autoscaling.metric -> the custom-metrics API name the HPA reads ----------
# Served by the shipped prometheus-adapter rules (deploy/prometheus-adapter/rules.yaml,
# docs/autoscaling.md): the latency quantiles fleet-wide on the Service, the rest per pod.
AUTOSCALING_METRICS: Final[dict[str, str]] = {
    "latencyP95": "modelyard_request_latency_p95_seconds",
    "latencyP99": "modelyard_request_latency_p99_seconds",
    "inFlight": REQUESTS_IN_FLIGHT,
    "queueDepth": QUEUE_DEPTH,
    "requestRate": "modelyard_requests_per_second",
}

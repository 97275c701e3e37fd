"""``spec`` of a ModelDeployment: the model, the runtime, resources, scaling, scheduling, auth.

Field docstrings become the CRD's descriptions (``kubectl explain mdep.spec.model.uri``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field, field_validator

from modelyard_operator.api.v1alpha1.common import (
    GPU_RESOURCES_CEL,
    Duration,
    Quantity,
    Wire,
    cel,
    quantity_value,
)
from modelyard_operator.api.v1alpha1.rollout import RolloutSpec
from modelyard_operator.api.v1alpha1.trust import ModelEncryption, ModelSignature, NetworkPolicySpec


class SecretRef(Wire):
    name: str = Field(min_length=1, max_length=253)
    """Name of a Secret in the ModelDeployment's namespace."""


class SecretKeyRef(Wire):
    name: str = Field(min_length=1, max_length=253)
    """Name of a Secret in the ModelDeployment's namespace."""
    key: str = Field(default="token", min_length=1, max_length=253)
    """Key in the Secret that holds the value."""


class ModelSource(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!self.uri.startsWith('file://') && !self.uri.startsWith('pvc://')"
                    " || !has(self.storageSecretRef)",
                    "model.storageSecretRef applies only to http(s)://, s3:// and gs:// sources",
                    ".storageSecretRef",
                )
            ]
        }
    )

    uri: str = Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.matches('^(file|pvc|https?|s3|gs)://.+')",
                    "model.uri must start with file://, pvc://, http://, https://, s3:// or gs://"
                    " and name an object",
                )
            ]
        },
    )
    """Where the .onnx file lives: file:///path (on the node), pvc://claim/path, https://host/path,
    s3://bucket/key or gs://bucket/key. The fetch init container downloads it before the server
    starts."""
    version: str = Field(default="v1", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9._-]+$")
    """Human version label, shown in status and copied into metric labels."""
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Expected sha256 of the file (64 lowercase hex characters). A mismatch stops the rollout
    with ModelVerified=False. `sha256sum model.onnx` prints it."""
    storage_secret_ref: SecretRef | None = None
    """Secret with credentials for the source: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    optional AWS_ENDPOINT_URL / AWS_REGION for s3:// and gs:// (HMAC keys), or
    HTTP_AUTHORIZATION for http(s)://."""
    signature: ModelSignature | None = None
    """Require an Ed25519 signature by this key beside the model (`modelyard sign`)."""
    encryption: ModelEncryption | None = None
    """The model is encrypted at rest (`modelyard encrypt`); decrypted in the runtime's memory."""


class Batching(Wire):
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    """Most rows merged into one inference."""
    max_queue_delay_ms: float = Field(default=0.0, ge=0, le=10_000)
    """Longest a request waits for a fuller batch, in milliseconds."""
    max_queue_size: int = Field(default=1024, ge=1, le=1_000_000)
    """Queued requests before the server answers 429."""
    timeout_ms: int = Field(default=60_000, ge=0, le=3_600_000)
    """Per-request deadline in milliseconds (0 = none); past it the server answers 504."""


class Warmup(Wire):
    batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [1], max_length=16, json_schema_extra={"default": [1]}
    )
    """Batch sizes run once before the pod reports Ready (empty = no warm-up)."""


class EnvVar(Wire):
    name: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """Environment variable name."""
    value: str = Field(default="", max_length=32768)
    """Its value."""


class RuntimeSpec(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.requireGPU) || !self.requireGPU || !has(self.executionProvider)"
                    " || self.executionProvider != 'cpu'",
                    "runtime.requireGPU cannot be true with executionProvider cpu",
                    ".requireGPU",
                )
            ]
        }
    )

    image: str | None = Field(default=None, max_length=512)
    """Runtime image; the operator's configured default when unset."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Pull policy for the runtime and fetch containers."""
    execution_provider: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    """onnxruntime execution provider: auto (CUDA when a GPU is visible, else CPU), cpu, cuda,
    tensorrt."""
    require_gpu: bool = Field(default=False, alias="requireGPU")
    """Keep the pod unready unless a GPU provider is actually active."""
    batching: Batching = Field(default_factory=Batching, json_schema_extra={"default": {}})
    """Dynamic batching and admission."""
    warmup: Warmup = Field(default_factory=Warmup, json_schema_extra={"default": {}})
    """Warm-up before Ready."""
    intra_op_threads: int = Field(default=0, ge=0, le=256)
    """onnxruntime intra-op threads of each server process (0 = its share of the pod's CPU
    limit, or of the node's CPUs without one)."""
    inference_workers: int = Field(default=1, ge=1, le=64)
    """Batches run at once, each in its own thread."""
    processes: int = Field(default=0, ge=0, le=64)
    """Server processes in each pod, sharing its ports; each loads its own copy of the model.
    0 = auto: one per CPU of the pod's limit (at most 8, as many as its memory holds) on the
    CPU, one on a GPU."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Runtime log level."""
    shutdown_grace_period: Duration = "30s"
    """How long a stopping pod drains in-flight requests (e.g. 30s, 2m)."""
    drain_delay: Duration = "5s"
    """After SIGTERM, how long a pod keeps answering new requests (each with Connection: close)
    while its endpoint is removed everywhere, before it stops accepting; at most the grace
    period."""
    max_connection_age: Duration = "30s"
    """Connections older than this are ended after their next answer (HTTP Connection: close,
    gRPC GOAWAY), so kept-alive clients spread over new pods and a canary's share (0s = never)."""
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    """Extra environment variables for the runtime container."""


class ResourceRequirements(Wire):
    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Requested resources, e.g. cpu: "1", memory: 2Gi."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Resource limits, e.g. nvidia.com/gpu: 1 or a MIG profile such as nvidia.com/mig-1g.10gb."""


class ScalingPolicy(Wire):
    type: Literal["Pods", "Percent"]
    """Pods: at most value pods per period; Percent: at most value percent of the current size."""
    value: int = Field(ge=1, le=10000)
    """How many pods, or what percent."""
    period_seconds: int = Field(ge=1, le=1800)
    """The window the limit applies to."""


class ScalingRules(Wire):
    """One direction of the autoscaler's behavior; what is left unset keeps the operator's
    default (docs/autoscaling.md)."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    """The autoscaler acts on the most conservative recommendation of this window (the highest
    when scaling down, the lowest when scaling up): 0 acts at once."""
    policies: list[ScalingPolicy] | None = Field(default=None, min_length=1, max_length=4)
    """How fast the size may change."""
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    """Which policy wins when several allow different changes (Disabled: never this way)."""


class ScalingBehavior(Wire):
    scale_up: ScalingRules | None = None
    """Scaling out; default: at once, doubling or adding 2 pods every 15 s, whichever is more."""
    scale_down: ScalingRules | None = None
    """Scaling in; default: after 300 s of lower recommendations, one pod a minute."""


AutoscalingMetric = Literal["latencyP95", "latencyP99", "inFlight", "queueDepth", "requestRate"]
_TARGET_CEL: Final = (
    "type(self.target) == int ? self.target > 0"
    " : isQuantity(string(self.target))"
    " && quantity(string(self.target)).isGreaterThan(quantity('0'))"
)


class Autoscaling(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.minReplicas <= self.maxReplicas",
                    "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas",
                    ".minReplicas",
                ),
                cel(
                    _TARGET_CEL,
                    "autoscaling.target must be a positive quantity, e.g. 4, 250m or 0.5",
                    ".target",
                ),
            ]
        }
    )

    engine: Literal["hpa", "keda"] = "hpa"
    """Autoscaler to drive: a HorizontalPodAutoscaler (autoscaling/v2) that reads the custom
    metrics API (prometheus-adapter with deploy/prometheus-adapter/rules.yaml), or a KEDA
    ScaledObject whose prometheus trigger runs the same queries (the operator's
    autoscalingPrometheusUrl)."""
    min_replicas: int = Field(default=1, ge=1, le=1000)
    """Fewest replicas."""
    max_replicas: int = Field(ge=1, le=1000)
    """Most replicas."""
    metric: AutoscalingMetric = "inFlight"
    """Metric the autoscaler tracks (docs/autoscaling.md): latencyP95 or latencyP99, the
    fleet-wide quantile of request latency over the last minute in seconds (one value for the
    whole ModelDeployment, an Object metric on its Service); inFlight, queueDepth or
    requestRate (requests per second), averaged per pod (Pods metrics)."""
    target: Quantity
    """Target value: seconds for the latency metrics (250m = 0.25 s), per-pod average for
    inFlight, queueDepth and requestRate."""
    behavior: ScalingBehavior | None = None
    """How fast to scale each way; unset parts keep the defaults (fast up, slow down)."""

    @field_validator("target")
    @classmethod
    def _positive_quantity(cls, value: int | str) -> int | str:
        if quantity_value(value) <= 0:
            raise ValueError("must be a positive quantity, e.g. 4, 250m or 0.5")
        return value


class Scheduling(Wire):
    node_selector: dict[str, str] = Field(default_factory=dict, max_length=32)
    """Node labels the runtime pods require."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list, max_length=32)
    """Pod tolerations (core/v1 Toleration)."""
    affinity: dict[str, Any] | None = None
    """Pod affinity (core/v1 Affinity)."""
    priority_class_name: str | None = Field(default=None, max_length=253)
    """PriorityClass of the runtime pods."""
    topology_spread_constraints: list[dict[str, Any]] | None = Field(default=None, max_length=8)
    """Topology spread constraints; unset spreads replicas across nodes (whenUnsatisfiable:
    ScheduleAnyway)."""


class Disruption(Wire):
    min_available: Quantity | None = None
    """PodDisruptionBudget minAvailable (number or percentage); default: minimum replicas - 1."""


class Auth(Wire):
    token_secret_ref: SecretKeyRef
    """Secret key holding the bearer token clients must send; inference and metadata then need
    `Authorization: Bearer <token>`."""


class ModelDeploymentSpec(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.runtime) || !has(self.resources)"
                    " || !has(self.runtime.executionProvider)"
                    " || self.runtime.executionProvider != 'cpu' || !(" + GPU_RESOURCES_CEL + ")",
                    "resources ask for a GPU but runtime.executionProvider is cpu: the GPU would"
                    " sit idle; use auto or cuda, or drop the GPU resources",
                    ".resources",
                )
            ]
        }
    )

    model: ModelSource
    """The ONNX model to serve."""
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec, json_schema_extra={"default": {}})
    """Runtime server settings."""
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, json_schema_extra={"default": {}}
    )
    """Resources of the runtime container."""
    replicas: int = Field(default=1, ge=1, le=1000)
    """Runtime pods; ignored while autoscaling is set (the HPA decides)."""
    autoscaling: Autoscaling | None = None
    """Scale on a runtime metric between minReplicas and maxReplicas."""
    scheduling: Scheduling = Field(default_factory=Scheduling, json_schema_extra={"default": {}})
    """Where the runtime pods may run."""
    disruption: Disruption = Field(default_factory=Disruption, json_schema_extra={"default": {}})
    """PodDisruptionBudget."""
    auth: Auth | None = None
    """Bearer-token auth for inference and metadata."""
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec, json_schema_extra={"default": {}}
    )
    """A NetworkPolicy for the runtime pods: inference only from the peers allowed, metrics only
    from the monitoring namespace."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, json_schema_extra={"default": {}})
    """How a new revision replaces the serving one: a canary judged on metrics, or at once."""
    progress_deadline: Duration = "10m"
    """How long a rollout may go without progress: a plain rollout then turns Degraded, a
    canary whose checks stay inconclusive (or whose pods do not become ready) is rolled back."""

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas

"""``serving.modelyard.io/v1alpha1`` ModelDeployment: the typed source of truth of the CRD.

Field docstrings become the CRD's descriptions (``kubectl explain mdep.spec.model.uri``);
``crdgen`` turns these models into the structural schema, CEL rules included. The operator
parses every object it reads with ``ModelDeployment.model_validate``. Pydantic only: no kopf, no
Kubernetes client, no I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from modelyard_runtime.contract.names import GROUP as GROUP  # the API group, re-exported

VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"
SHORT_NAMES: Final = ("mdep",)
CATEGORIES: Final = ("modelyard",)

URI_SCHEMES: Final = ("file", "pvc", "http", "https", "s3", "gs")
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_GPU_KEY = "k == 'nvidia.com/gpu' || k.startsWith('nvidia.com/mig-')"
GPU_RESOURCES_CEL: Final = (
    f"(has(self.resources.limits) && self.resources.limits.exists(k, {_GPU_KEY}))"
    f" || (has(self.resources.requests) && self.resources.requests.exists(k, {_GPU_KEY}))"
)

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
Quantity = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One ``x-kubernetes-validations`` entry."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class _Wire(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


class SecretRef(_Wire):
    name: str = Field(min_length=1, max_length=253)
    """Name of a Secret in the ModelDeployment's namespace."""


class SecretKeyRef(_Wire):
    name: str = Field(min_length=1, max_length=253)
    """Name of a Secret in the ModelDeployment's namespace."""
    key: str = Field(default="token", min_length=1, max_length=253)
    """Key in the Secret that holds the value."""


class ModelSource(_Wire):
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


class Batching(_Wire):
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    """Most rows merged into one inference."""
    max_queue_delay_ms: float = Field(default=0.0, ge=0, le=10_000)
    """Longest a request waits for a fuller batch, in milliseconds."""
    max_queue_size: int = Field(default=1024, ge=1, le=1_000_000)
    """Queued requests before the server answers 429."""
    timeout_ms: int = Field(default=60_000, ge=0, le=3_600_000)
    """Per-request deadline in milliseconds (0 = none); past it the server answers 504."""


class Warmup(_Wire):
    batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [1], max_length=16, json_schema_extra={"default": [1]}
    )
    """Batch sizes run once before the pod reports Ready (empty = no warm-up)."""


class EnvVar(_Wire):
    name: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """Environment variable name."""
    value: str = Field(default="", max_length=32768)
    """Its value."""


class RuntimeSpec(_Wire):
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
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    """Extra environment variables for the runtime container."""


class ResourceRequirements(_Wire):
    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Requested resources, e.g. cpu: "1", memory: 2Gi."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Resource limits, e.g. nvidia.com/gpu: 1 or a MIG profile such as nvidia.com/mig-1g.10gb."""


class Autoscaling(_Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.minReplicas <= self.maxReplicas",
                    "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas",
                    ".minReplicas",
                )
            ]
        }
    )

    engine: Literal["hpa"] = "hpa"
    """Autoscaler to drive: a HorizontalPodAutoscaler (autoscaling/v2)."""
    min_replicas: int = Field(default=1, ge=1, le=1000)
    """Fewest replicas."""
    max_replicas: int = Field(ge=1, le=1000)
    """Most replicas."""
    metric: Literal["latencyP95", "latencyP99", "inFlight", "queueDepth"] = "inFlight"
    """Metric the autoscaler tracks: latencyP95 or latencyP99 (seconds; served by the custom
    metrics API as modelyard_request_latency_p95_seconds / _p99_seconds), inFlight
    (modelyard_requests_in_flight) or queueDepth (modelyard_queue_depth); docs/operator.md has
    the Prometheus adapter rules."""
    target: Quantity
    """Target average value per pod: seconds for latency metrics (e.g. 250m = 0.25 s), requests
    for inFlight and queueDepth."""


class Scheduling(_Wire):
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


class Disruption(_Wire):
    min_available: Quantity | None = None
    """PodDisruptionBudget minAvailable (number or percentage); default: minimum replicas - 1."""


class Auth(_Wire):
    token_secret_ref: SecretKeyRef
    """Secret key holding the bearer token clients must send; inference and metadata then need
    `Authorization: Bearer <token>`."""


class ModelDeploymentSpec(_Wire):
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
    progress_deadline: Duration = "10m"
    """How long a rollout may go without progress before the ModelDeployment turns Degraded."""

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas


Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Failed"]
ConditionType = Literal["Ready", "Progressing", "ModelVerified", "Degraded"]


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(_Wire):
    type: str
    """Condition type: Ready, Progressing, ModelVerified or Degraded."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """One CamelCase word for machines."""
    message: str = ""
    """What happened, for people."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    observed_generation: int = 0
    """The .metadata.generation this condition was computed from."""


class TrackStatus(_Wire):
    version: str = ""
    """Model version on this track."""
    revision: str = ""
    """Revision hash (model + runtime spec)."""
    ready_replicas: int = 0
    """Ready pods on this track."""


class HistoryEntry(_Wire):
    version: str
    """Model version."""
    revision: str
    """Revision hash."""
    sha256: str = ""
    """Declared digest."""
    image: str = ""
    """Runtime image."""
    result: str = ""
    """Ready, Failed or Superseded."""
    reason: str = ""
    """Why, for Failed."""
    started_at: str = ""
    """When the revision was first applied (RFC 3339)."""
    finished_at: str = ""
    """When it became Ready, failed or was replaced (RFC 3339)."""


HISTORY_LIMIT: Final = 10


class ModelDeploymentStatus(_Wire):
    observed_generation: int = 0
    """The .metadata.generation the status describes."""
    phase: Phase = "Pending"
    """Pending, Progressing, Ready, Degraded or Failed."""
    conditions: list[Condition] = Field(default_factory=list, max_length=8)
    """Ready, Progressing, ModelVerified, Degraded."""
    replicas: int = 0
    """Runtime pods that exist."""
    ready_replicas: int = 0
    """Runtime pods that are Ready."""
    selector: str = ""
    """Label selector of the runtime pods (for the scale subresource)."""
    url: str = ""
    """In-cluster URL of the Service."""
    stable: TrackStatus = Field(default_factory=TrackStatus)
    """The version being served."""
    canary: TrackStatus = Field(default_factory=TrackStatus)
    """The version under test during a canary rollout (empty otherwise)."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    """Recent revisions, newest first."""


class ObjectMeta(BaseModel):
    """The metadata the operator reads; everything else passes through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class ModelDeployment(_Wire):
    """A model served by modelyard runtime pods."""

    api_version: Literal["serving.modelyard.io/v1alpha1"] = "serving.modelyard.io/v1alpha1"
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    model_config = ConfigDict(extra="ignore")

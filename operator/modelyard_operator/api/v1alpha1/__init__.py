"""``serving.modelyard.io/v1alpha1`` ModelDeployment: the typed source of truth of the CRD.

Field docstrings become the CRD's descriptions (``kubectl explain mdep.spec.model.uri``);
``crdgen`` turns these models into the structural schema, CEL rules included. The operator
parses every object it reads with ``ModelDeployment.model_validate``. Pydantic only: no kopf, no
Kubernetes client, no I/O. ``spec``, ``rollout`` and ``status`` hold the parts; this module the
object and its names.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard_operator.api.v1alpha1.common import (
    DURATION_PATTERN as DURATION_PATTERN,
)
from modelyard_operator.api.v1alpha1.common import (
    GPU_RESOURCES_CEL as GPU_RESOURCES_CEL,
)
from modelyard_operator.api.v1alpha1.common import (
    QUANTITY_PATTERN as QUANTITY_PATTERN,
)
from modelyard_operator.api.v1alpha1.common import (
    URI_SCHEMES as URI_SCHEMES,
)
from modelyard_operator.api.v1alpha1.common import (
    Duration as Duration,
)
from modelyard_operator.api.v1alpha1.common import (
    Quantity as Quantity,
)
from modelyard_operator.api.v1alpha1.common import (
    Wire as Wire,
)
from modelyard_operator.api.v1alpha1.common import (
    cel as cel,
)
from modelyard_operator.api.v1alpha1.common import (
    quantity_value as quantity_value,
)
from modelyard_operator.api.v1alpha1.common import (
    seconds as seconds,
)
from modelyard_operator.api.v1alpha1.rollout import (
    METRIC_NAME_PATTERN as METRIC_NAME_PATTERN,
)
from modelyard_operator.api.v1alpha1.rollout import (
    TEMPLATE_KEYS as TEMPLATE_KEYS,
)
from modelyard_operator.api.v1alpha1.rollout import (
    Analysis as Analysis,
)
from modelyard_operator.api.v1alpha1.rollout import (
    AnalysisMetric as AnalysisMetric,
)
from modelyard_operator.api.v1alpha1.rollout import (
    CustomCheck as CustomCheck,
)
from modelyard_operator.api.v1alpha1.rollout import (
    ErrorRateCheck as ErrorRateCheck,
)
from modelyard_operator.api.v1alpha1.rollout import (
    LatencyCheck as LatencyCheck,
)
from modelyard_operator.api.v1alpha1.rollout import (
    ReplicasRouting as ReplicasRouting,
)
from modelyard_operator.api.v1alpha1.rollout import (
    RolloutSpec as RolloutSpec,
)
from modelyard_operator.api.v1alpha1.rollout import (
    Step as Step,
)
from modelyard_operator.api.v1alpha1.rollout import (
    TrafficRouting as TrafficRouting,
)
from modelyard_operator.api.v1alpha1.spec import (
    Auth as Auth,
)
from modelyard_operator.api.v1alpha1.spec import (
    Autoscaling as Autoscaling,
)
from modelyard_operator.api.v1alpha1.spec import (
    AutoscalingMetric as AutoscalingMetric,
)
from modelyard_operator.api.v1alpha1.spec import (
    Batching as Batching,
)
from modelyard_operator.api.v1alpha1.spec import (
    Disruption as Disruption,
)
from modelyard_operator.api.v1alpha1.spec import (
    EnvVar as EnvVar,
)
from modelyard_operator.api.v1alpha1.spec import (
    ModelDeploymentSpec as ModelDeploymentSpec,
)
from modelyard_operator.api.v1alpha1.spec import (
    ModelSource as ModelSource,
)
from modelyard_operator.api.v1alpha1.spec import (
    ResourceRequirements as ResourceRequirements,
)
from modelyard_operator.api.v1alpha1.spec import (
    RuntimeSpec as RuntimeSpec,
)
from modelyard_operator.api.v1alpha1.spec import (
    ScalingBehavior as ScalingBehavior,
)
from modelyard_operator.api.v1alpha1.spec import (
    ScalingPolicy as ScalingPolicy,
)
from modelyard_operator.api.v1alpha1.spec import (
    ScalingRules as ScalingRules,
)
from modelyard_operator.api.v1alpha1.spec import (
    Scheduling as Scheduling,
)
from modelyard_operator.api.v1alpha1.spec import (
    SecretKeyRef as SecretKeyRef,
)
from modelyard_operator.api.v1alpha1.spec import (
    SecretRef as SecretRef,
)
from modelyard_operator.api.v1alpha1.spec import (
    Warmup as Warmup,
)
from modelyard_operator.api.v1alpha1.status import (
    HISTORY_LIMIT as HISTORY_LIMIT,
)
from modelyard_operator.api.v1alpha1.status import (
    AnalysisStatus as AnalysisStatus,
)
from modelyard_operator.api.v1alpha1.status import (
    AutoscalingStatus as AutoscalingStatus,
)
from modelyard_operator.api.v1alpha1.status import (
    CanaryState as CanaryState,
)
from modelyard_operator.api.v1alpha1.status import (
    CanaryStatus as CanaryStatus,
)
from modelyard_operator.api.v1alpha1.status import (
    CheckResult as CheckResult,
)
from modelyard_operator.api.v1alpha1.status import (
    CheckVerdict as CheckVerdict,
)
from modelyard_operator.api.v1alpha1.status import (
    Condition as Condition,
)
from modelyard_operator.api.v1alpha1.status import (
    ConditionStatus as ConditionStatus,
)
from modelyard_operator.api.v1alpha1.status import (
    ConditionType as ConditionType,
)
from modelyard_operator.api.v1alpha1.status import (
    Ending as Ending,
)
from modelyard_operator.api.v1alpha1.status import (
    HistoryEntry as HistoryEntry,
)
from modelyard_operator.api.v1alpha1.status import (
    ModelDeploymentStatus as ModelDeploymentStatus,
)
from modelyard_operator.api.v1alpha1.status import (
    Phase as Phase,
)
from modelyard_operator.api.v1alpha1.status import (
    RolledBack as RolledBack,
)
from modelyard_operator.api.v1alpha1.status import (
    TrackStatus as TrackStatus,
)
from modelyard_operator.api.v1alpha1.trust import (
    EncryptionKeyRef as EncryptionKeyRef,
)
from modelyard_operator.api.v1alpha1.trust import (
    LabelSelector as LabelSelector,
)
from modelyard_operator.api.v1alpha1.trust import (
    ModelEncryption as ModelEncryption,
)
from modelyard_operator.api.v1alpha1.trust import (
    ModelSignature as ModelSignature,
)
from modelyard_operator.api.v1alpha1.trust import (
    NetworkPeer as NetworkPeer,
)
from modelyard_operator.api.v1alpha1.trust import (
    NetworkPolicySpec as NetworkPolicySpec,
)
from modelyard_operator.api.v1alpha1.trust import (
    PublicKeyRef as PublicKeyRef,
)
from modelyard_runtime.contract.names import GROUP as GROUP  # the API group, re-exported

VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"
SHORT_NAMES: Final = ("mdep",)
CATEGORIES: Final = ("modelyard",)


class ObjectMeta(BaseModel):
    """The metadata the operator reads; everything else passes through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class ModelDeployment(Wire):
    """A model served by modelyard runtime pods."""

    api_version: Literal["serving.modelyard.io/v1alpha1"] = "serving.modelyard.io/v1alpha1"
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    model_config = ConfigDict(extra="ignore")

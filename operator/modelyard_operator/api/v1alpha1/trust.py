"""The trust parts of a ModelDeployment's spec: a signed or encrypted model, and its network policy.

``model.signature`` names the public key a signed model must verify with; ``model.encryption``
the Secret holding the key of an encrypted model; ``networkPolicy`` who may reach the pods.
Field docstrings become the CRD's descriptions. Pydantic only: no kopf, no client, no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from modelyard_operator.api.v1alpha1.common import Wire, cel

KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # a ConfigMap or Secret data key
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # a namespace (DNS-1123 label)


class PublicKeyRef(Wire):
    kind: Literal["ConfigMap", "Secret"] = "ConfigMap"
    """Where the public key lives: a ConfigMap (a public key is no secret) or a Secret."""
    name: str = Field(min_length=1, max_length=253)
    """Name of the ConfigMap or Secret in the ModelDeployment's namespace."""
    key: str = Field(default="public.pem", min_length=1, max_length=253, pattern=KEY_PATTERN)
    """Key holding the Ed25519 public key (PEM, as `modelyard keygen signing` writes it)."""


class ModelSignature(Wire):
    public_key_ref: PublicKeyRef
    """The trusted public key. The fetch init container reads the signature beside the model
    (the model's URI plus .sig, written by `modelyard sign`) and refuses a model it does not
    verify: the pod never becomes Ready and ModelVerified is False with reason
    SignatureInvalid."""


class EncryptionKeyRef(Wire):
    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret in the ModelDeployment's namespace."""
    key: str = Field(default="key", min_length=1, max_length=253, pattern=KEY_PATTERN)
    """Key holding the AES-256 key (32 bytes: raw, base64 or hex; `modelyard keygen
    encryption` writes base64)."""


class ModelEncryption(Wire):
    key_secret_ref: EncryptionKeyRef
    """Secret with the key the model was encrypted with (`modelyard encrypt`). It is mounted
    into the runtime container only, which decrypts the model in memory: the plaintext never
    reaches a disk. A wrong key fails with reason DecryptFailed."""


class LabelSelectorRequirement(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.operator in ['In', 'NotIn'] ? size(self.values) > 0"
                    " : size(self.values) == 0",
                    "In and NotIn need values; Exists and DoesNotExist take none",
                    ".values",
                )
            ]
        }
    )

    key: str = Field(min_length=1, max_length=317)
    """Label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key relates to the values."""
    values: list[str] = Field(default_factory=list, max_length=64)
    """Values, for In and NotIn."""


class LabelSelector(Wire):
    match_labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    """Labels that must all match. An empty selector selects everything."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=16)
    """Requirements that must all hold."""

    def to_k8s(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.match_labels:
            out["matchLabels"] = dict(sorted(self.match_labels.items()))
        if self.match_expressions:
            out["matchExpressions"] = [
                e.model_dump(mode="json", by_alias=True) for e in self.match_expressions
            ]
        return out


class IPBlock(Wire):
    cidr: str = Field(min_length=1, max_length=64)
    """Addresses allowed, e.g. 10.0.0.0/8."""
    except_: list[str] = Field(default_factory=list, alias="except", max_length=32)
    """Addresses inside cidr that are not allowed."""


class NetworkPeer(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.ipBlock) ? !has(self.namespaceSelector) && !has(self.podSelector)"
                    " : has(self.namespaceSelector) || has(self.podSelector)",
                    "a peer is an ipBlock alone, or a namespaceSelector and/or a podSelector",
                )
            ]
        }
    )

    namespace_selector: LabelSelector | None = None
    """Namespaces whose pods may connect (with podSelector: only those pods in them)."""
    pod_selector: LabelSelector | None = None
    """Pods that may connect; alone, pods of the ModelDeployment's namespace."""
    ip_block: IPBlock | None = None
    """Addresses that may connect (e.g. a load balancer outside the cluster)."""

    def to_k8s(self) -> dict[str, Any]:
        """The peer as a NetworkPolicyPeer."""
        out: dict[str, Any] = {}
        if self.namespace_selector is not None:
            out["namespaceSelector"] = self.namespace_selector.to_k8s()
        if self.pod_selector is not None:
            out["podSelector"] = self.pod_selector.to_k8s()
        if self.ip_block is not None:
            out["ipBlock"] = self.ip_block.model_dump(mode="json", by_alias=True)
        return out


class NetworkPolicySpec(Wire):
    enabled: bool | None = None
    """Generate a NetworkPolicy for the runtime pods. Unset: the operator's
    `networkPolicyDefault` (the Helm chart turns it on). With it, /metrics moves to its own
    port (8082, named metrics, annotated prometheus.io/port)."""
    inference_from: list[NetworkPeer] | None = Field(default=None, max_length=32)
    """Who may reach the inference ports (HTTP 8080, gRPC 8081). Unset: every pod in the
    ModelDeployment's namespace; []: nobody."""
    monitoring_namespace: str | None = Field(default=None, max_length=63, pattern=NAME_PATTERN)
    """The only namespace that may scrape the metrics port. Unset: the operator's
    `monitoringNamespace` (default monitoring)."""

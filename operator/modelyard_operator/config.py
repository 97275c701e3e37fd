"""Operator-wide configuration, read once at start from a YAML file and/or env.

Env (``MODELYARD_OPERATOR_<FIELD>``, upper snake case) overrides the file. ``load_config`` raises
``ConfigError`` naming every bad field, so ``__main__`` can exit 2 with a clear message before
anything connects to the cluster. No I/O beyond reading the one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelyard_operator.errors import ConfigError

ENV_PREFIX: Final = "MODELYARD_OPERATOR_"
DEFAULT_IMAGE: Final = "ghcr.io/modelyard/modelyard-runtime:0.1.0"


class OperatorConfig(BaseModel):
    """What every reconcile shares."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    default_runtime_image: str = Field(default=DEFAULT_IMAGE, min_length=1)
    """Runtime image for ModelDeployments that do not set spec.runtime.image."""
    prometheus_url: str = Field(default="", pattern=r"^(https?://.+)?$")
    """Prometheus the canary analysis queries (empty: none configured)."""
    autoscaling_prometheus_url: str = Field(default="", pattern=r"^(https?://.+)?$")
    """Prometheus a KEDA ScaledObject's trigger queries (engine: keda), as KEDA reaches it;
    empty: prometheus_url."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty watches every namespace."""
    metrics_port: int = Field(default=8090, ge=0, le=65535)
    """Port of /metrics (0 = pick one)."""
    health_port: int = Field(default=8091, ge=0, le=65535)
    """Port of /healthz, the liveness endpoint (0 = pick one)."""
    secret_recheck_seconds: float = Field(default=30.0, gt=0, le=3600)
    """How often a ModelDeployment whose Secret is missing is checked again."""
    status_debounce_seconds: float = Field(default=0.5, ge=0, le=30)
    """How long a change to a runtime pod or Deployment waits for more changes before the
    ModelDeployment's status is recomputed (one write for a burst)."""
    resync_seconds: float = Field(default=60.0, ge=1, le=3600)
    """How often every ModelDeployment's status is recomputed even without a change (a safety
    net for missed events; nothing is written when it is already right)."""
    max_concurrent_reconciles: int = Field(default=16, ge=1, le=1000)
    """ModelDeployments whose children are written at the same time; the rest wait their turn."""
    network_policy_default: bool = False
    """Generate a NetworkPolicy for every ModelDeployment that does not set
    spec.networkPolicy.enabled (the Helm chart turns it on)."""
    monitoring_namespace: str = Field(
        default="monitoring", max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    """The namespace whose pods (Prometheus) may scrape the runtime's metrics port, where a
    ModelDeployment's NetworkPolicy does not name one."""
    log_format: Literal["json", "text"] = "json"
    """Structured JSON lines, or plain text for a terminal."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level."""
    leader_election: bool = False
    """Hold a coordination.k8s.io Lease before acting, so that several replicas can run with
    one acting and the others on standby (required for more than one replica)."""
    leader_election_namespace: str = ""
    """Namespace of the Lease; empty: the pod's own (env POD_NAMESPACE, else the
    ServiceAccount's namespace file)."""
    leader_election_lease_name: str = Field(default="modelyard-operator", min_length=1)
    """Name of the Lease."""
    leader_election_lease_duration_seconds: float = Field(default=15.0, ge=2, le=300)
    """How long a standby waits after the last renewal it saw before it takes the Lease over."""
    leader_election_renew_deadline_seconds: float = Field(default=10.0, ge=1, le=300)
    """How long the leader keeps acting without a successful renewal; then it stops and exits
    (shorter than the lease duration, so it stops before a standby can take over)."""
    leader_election_retry_period_seconds: float = Field(default=2.0, gt=0, le=60)
    """How often the leader renews and a standby checks the Lease."""

    @property
    def keda_prometheus_url(self) -> str:
        return self.autoscaling_prometheus_url or self.prometheus_url

    @model_validator(mode="after")
    def _election_timing(self) -> OperatorConfig:
        retry = self.leader_election_retry_period_seconds
        renew = self.leader_election_renew_deadline_seconds
        lease = self.leader_election_lease_duration_seconds
        if not retry < renew < lease:
            raise ValueError(
                "leader election needs retry period < renew deadline < lease duration, got "
                f"{retry:g} s, {renew:g} s, {lease:g} s"
            )
        return self

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value


def load_config(path: Path | None, environ: Mapping[str, str]) -> OperatorConfig:
    """File values, then env overrides; ``ConfigError`` lists every problem."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {path} must hold a mapping, not {type(loaded).__name__}"
            )
        values.update(_snake(loaded or {}))
    for name in OperatorConfig.model_fields:
        env = ENV_PREFIX + name.upper()
        if env in environ:
            values[name] = environ[env]
    try:
        return OperatorConfig.model_validate(values)
    except ValidationError as e:
        problems = "; ".join(
            f"{_env_or_key(err['loc'])}: {err['msg']}" for err in e.errors(include_url=False)
        )
        raise ConfigError(f"invalid operator configuration: {problems}") from e


def _snake(values: Mapping[str, Any]) -> dict[str, Any]:
    """Accept camelCase keys in the file too (``defaultRuntimeImage``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in str(key))
        out[snake] = value
    return out


def _env_or_key(loc: tuple[int | str, ...]) -> str:
    if not loc:  # a rule across fields; its message names them
        return "settings"
    name = str(loc[0])
    return f"{name} (env {ENV_PREFIX}{name.upper()})"

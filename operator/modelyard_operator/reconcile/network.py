"""A ModelDeployment's NetworkPolicy, and the operator defaults it is resolved with. Pure.

``with_network_defaults`` fills ``spec.networkPolicy.enabled`` and ``monitoringNamespace`` from
the operator's configuration where the spec leaves them unset (the controller calls it on every
object it reads; the spec itself is never written). ``build_network_policy`` then gives, for an
enabled one, a policy selecting every runtime pod of the ModelDeployment (both tracks) that
admits:

- the inference ports (HTTP, gRPC) from ``inferenceFrom`` (unset: the pods of its own namespace;
  ``[]``: no rule, so nobody),
- the metrics port from the monitoring namespace only.

Ingress only: the fetch container must still reach its model store. Traffic from the node itself
(the kubelet's probes) is not subject to NetworkPolicy in the usual CNIs (Calico, Cilium).
With a policy the runtime serves ``/metrics`` on ``METRICS_PORT`` alone (``uses_metrics_port``).
"""

from __future__ import annotations

from typing import Any, Final

from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.reconcile import naming
from modelyard_runtime.contract.names import GRPC_PORT, HTTP_PORT, METRICS_PORT

NETWORK_POLICY: Final = ("networking.k8s.io/v1", "NetworkPolicy")
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"  # set by the apiserver (1.22+)

Object = dict[str, Any]


def with_network_defaults(
    md: ModelDeployment, *, enabled: bool, monitoring_namespace: str
) -> ModelDeployment:
    """``md`` with the operator's defaults where its network policy leaves a field unset."""
    policy = md.spec.network_policy
    update: dict[str, Any] = {}
    if policy.enabled is None:
        update["enabled"] = enabled
    if policy.monitoring_namespace is None:
        update["monitoring_namespace"] = monitoring_namespace
    if not update:
        return md
    spec = md.spec.model_copy(update={"network_policy": policy.model_copy(update=update)})
    return md.model_copy(update={"spec": spec})


def uses_metrics_port(md: ModelDeployment) -> bool:
    """Whether the runtime pods serve /metrics on their own port (with a network policy)."""
    return md.spec.network_policy.enabled is True


def pod_annotations(md: ModelDeployment) -> dict[str, str]:
    """Where Prometheus finds the metrics when they have a port of their own."""
    if not uses_metrics_port(md):
        return {}
    return {
        "prometheus.io/path": "/metrics",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/scrape": "true",
    }


def _port(number: int) -> Object:
    return {"port": number, "protocol": "TCP"}


def build_network_policy(md: ModelDeployment) -> Object | None:
    """The NetworkPolicy of an enabled ModelDeployment, else None."""
    policy = md.spec.network_policy
    if policy.enabled is not True:
        return None
    rules: list[Object] = []
    if policy.inference_from is None:
        clients: list[Object] = [{"podSelector": {}}]  # the ModelDeployment's own namespace
    else:
        clients = [peer.to_k8s() for peer in policy.inference_from]
    if clients:  # never an empty `from`: in a NetworkPolicy that would admit everyone
        rules.append({"from": clients, "ports": [_port(HTTP_PORT), _port(GRPC_PORT)]})
    if policy.monitoring_namespace:
        monitoring = {"matchLabels": {NAMESPACE_NAME_LABEL: policy.monitoring_namespace}}
        rules.append({"from": [{"namespaceSelector": monitoring}], "ports": [_port(METRICS_PORT)]})
    return {
        "apiVersion": NETWORK_POLICY[0],
        "kind": NETWORK_POLICY[1],
        "metadata": {
            "name": md.metadata.name,
            "namespace": md.metadata.namespace,
            "labels": naming.common_labels(md),
            "ownerReferences": [naming.owner_reference(md)],
        },
        "spec": {
            "podSelector": {"matchLabels": {naming.DEPLOYMENT_LABEL: md.metadata.name}},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }

"""The CLI's Kubernetes access: read a ModelDeployment, set the action annotation, follow
changes. Uses the official client with the kubeconfig kubectl uses (``--kubeconfig``,
``$KUBECONFIG``, ``--context``), or the in-cluster ServiceAccount."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Protocol

from modelyard_cli.errors import CliError
from modelyard_operator.api.v1alpha1 import GROUP, PLURAL, VERSION, ModelDeployment
from modelyard_runtime.contract.names import ACTION_ANNOTATION


class ModelDeployments(Protocol):
    def get(self, namespace: str, name: str) -> ModelDeployment: ...

    def set_action(self, namespace: str, name: str, action: str) -> None: ...

    def follow(self, namespace: str, name: str, timeout: int) -> Iterator[ModelDeployment]: ...


@dataclasses.dataclass
class KubeModelDeployments:
    api: Any  # kubernetes.client.CustomObjectsApi

    @classmethod
    def connect(
        cls, kubeconfig: str | None, context: str | None
    ) -> tuple[KubeModelDeployments, str]:
        """The client and the namespace of the kubeconfig's context (default: ``default``)."""
        try:
            from kubernetes import client, config
        except ImportError as e:
            raise CliError(f"the rollout commands need pip install 'modelyard[cli]' ({e})") from e
        namespace = "default"
        try:
            config.load_kube_config(config_file=kubeconfig, context=context)
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                active = next(c for c in contexts if c["name"] == context)
            namespace = (active or {}).get("context", {}).get("namespace") or namespace
        except config.ConfigException as e:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                raise CliError(f"no usable kubeconfig: {e}") from e
        return cls(client.CustomObjectsApi()), namespace

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            if e.status == 404:
                raise CliError(f"{what}: not found") from e
            raise CliError(f"{what}: {e.status} {e.reason}") from e
        except OSError as e:  # urllib3's connection errors
            raise CliError(f"{what}: cannot reach the API server: {e}") from e

    def get(self, namespace: str, name: str) -> ModelDeployment:
        body = self._call(f"modeldeployment {namespace}/{name}",
                          self.api.get_namespaced_custom_object,
                          GROUP, VERSION, namespace, PLURAL, name)  # fmt: skip
        return ModelDeployment.model_validate(body)

    def set_action(self, namespace: str, name: str, action: str) -> None:
        patch = {"metadata": {"annotations": {ACTION_ANNOTATION: action}}}
        self._call(f"modeldeployment {namespace}/{name}",
                   self.api.patch_namespaced_custom_object,
                   GROUP, VERSION, namespace, PLURAL, name, patch)  # fmt: skip

    def follow(self, namespace: str, name: str, timeout: int) -> Iterator[ModelDeployment]:
        from kubernetes import watch

        stream = watch.Watch().stream(
            self.api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            field_selector=f"metadata.name={name}", timeout_seconds=timeout,
        )  # fmt: skip
        for event in stream:
            if event["type"] in ("ADDED", "MODIFIED"):
                yield ModelDeployment.model_validate(event["object"])

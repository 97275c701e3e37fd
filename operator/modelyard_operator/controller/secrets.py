"""Whether the Secrets a ModelDeployment references exist (a kubelet would only retry).

Each is read by name with ``get`` (the only verb the operator has on Secrets: it never lists or
watches them). A public key in a ConfigMap is not checked here (the operator cannot read
ConfigMaps); the fetch container reports a missing one.
"""

from __future__ import annotations

import logging

from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.k8s.api import KubeClient
from modelyard_operator.k8s.errors import K8sForbiddenError, K8sNotFoundError
from modelyard_operator.reconcile.observed import Problem

log = logging.getLogger(__name__)


async def check_secrets(client: KubeClient, md: ModelDeployment) -> Problem | None:
    """A referenced Secret (or key) that does not exist, as a Problem; read by name only."""
    refs: list[tuple[str, str | None, str]] = []
    if md.spec.model.storage_secret_ref:
        refs.append((md.spec.model.storage_secret_ref.name, None, "spec.model.storageSecretRef"))
    if md.spec.auth:
        ref = md.spec.auth.token_secret_ref
        refs.append((ref.name, ref.key, "spec.auth.tokenSecretRef"))
    if md.spec.model.encryption:
        key_ref = md.spec.model.encryption.key_secret_ref
        refs.append((key_ref.name, key_ref.key, "spec.model.encryption.keySecretRef"))
    signature = md.spec.model.signature
    if signature and signature.public_key_ref.kind == "Secret":
        public = signature.public_key_ref
        refs.append((public.name, public.key, "spec.model.signature.publicKeyRef"))
    for name, key, field in refs:
        try:
            secret = await client.get("v1", "Secret", md.metadata.namespace, name)
        except K8sNotFoundError:
            return Problem("SecretNotFound", f"Secret {name!r} ({field}) does not exist")
        except K8sForbiddenError:
            log.warning("cannot read Secret %s/%s to check it", md.metadata.namespace, name)
            continue
        if key is not None and key not in (secret.get("data") or {}):
            return Problem("SecretKeyNotFound", f"Secret {name!r} has no key {key!r} ({field})")
    return None

"""kopf glue for ModelDeployments: observe -> plan -> apply -> status. No decisions here.

``build_registry`` returns an explicit ``kopf.OperatorRegistry`` whose handlers close over one
``OperatorState``. Children are applied on create, update and resume; the status is recomputed
whenever the ModelDeployment, its Deployment or one of its pods changes, from kopf's in-memory
indexes, and written only when it differs. Errors map onto kopf here and nowhere else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, cast

import kopf
from pydantic import ValidationError

from modelyard_operator.api.v1alpha1 import (
    GROUP,
    PLURAL,
    VERSION,
    ModelDeployment,
    ModelDeploymentStatus,
)
from modelyard_operator.errors import SpecError
from modelyard_operator.handlers.state import Key, OperatorState
from modelyard_operator.k8s.errors import (
    K8sError,
    K8sForbiddenError,
    K8sInvalidError,
    K8sNotFoundError,
)
from modelyard_operator.reconcile import naming
from modelyard_operator.reconcile.children import desired_children, runtime_image, stale_kinds
from modelyard_operator.reconcile.status import Observed, Problem, compute_status, status_payload

log = logging.getLogger(__name__)
MANAGED = {"app.kubernetes.io/managed-by": naming.MANAGED_BY}
MISSING_OWNER_RETRIES = 20
RETRY_BASE, RETRY_CAP = 2.0, 300.0  # seconds: backoff for conflicts and transient API errors
_POD_STATUS_KEYS = ("conditions", "containerStatuses", "initContainerStatuses", "phase")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(body: Mapping[str, Any]) -> ModelDeployment:
    try:
        return ModelDeployment.model_validate(dict(body))
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SpecError("InvalidSpec", f"{where}: {first['msg']}") from e


def _trim(
    body: Mapping[str, Any],
    *,
    spec_keys: tuple[str, ...] | None = None,
    status_keys: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """What the indexes keep of an object: the fields status needs, not the pod template."""
    meta = body.get("metadata", {})
    spec, status = dict(body.get("spec") or {}), dict(body.get("status") or {})
    if spec_keys is not None:
        spec = {k: spec[k] for k in spec_keys if k in spec}
    if status_keys is not None:
        status = {k: status[k] for k in status_keys if k in status}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "generation", "labels") if k in meta
        },
        "spec": spec,
        "status": status,
    }


async def check_secrets(state: OperatorState, md: ModelDeployment) -> Problem | None:
    """A referenced Secret (or key) that does not exist, as a Problem; kubelet would only retry."""
    refs: list[tuple[str, str | None, str]] = []
    if md.spec.model.storage_secret_ref:
        refs.append((md.spec.model.storage_secret_ref.name, None, "spec.model.storageSecretRef"))
    if md.spec.auth:
        ref = md.spec.auth.token_secret_ref
        refs.append((ref.name, ref.key, "spec.auth.tokenSecretRef"))
    for name, key, field in refs:
        try:
            secret = await state.client().get("v1", "Secret", md.metadata.namespace, name)
        except K8sNotFoundError:
            return Problem("SecretNotFound", f"Secret {name!r} ({field}) does not exist")
        except K8sForbiddenError:
            log.warning("cannot read Secret %s/%s to check it", md.metadata.namespace, name)
            continue
        if key is not None and key not in (secret.get("data") or {}):
            return Problem("SecretKeyNotFound", f"Secret {name!r} has no key {key!r} ({field})")
    return None


async def apply_children(state: OperatorState, md: ModelDeployment, image: str, rev: str) -> None:
    client = state.client()
    for child in desired_children(md, image, rev):
        await client.apply(child)
    for api_version, kind in stale_kinds(md):
        try:
            await client.delete(api_version, kind, md.metadata.namespace, md.metadata.name)
        except K8sNotFoundError:
            continue


async def refresh_status(
    state: OperatorState, body: Mapping[str, Any], indexes: Mapping[str, Any]
) -> None:
    """Recompute the status from the indexes (a handler's kwargs); patch it if it changed."""
    deployments: kopf.Index[Key, dict[str, Any]] = indexes["runtime_deployments"]
    pods: kopf.Index[Key, dict[str, Any]] = indexes["runtime_pods"]
    key: Key = (body["metadata"]["namespace"], body["metadata"]["name"])
    async with state.locks[key]:
        try:
            md = parse(body)
        except SpecError:
            return
        written = state.written.get(key)
        if written and written[0] == md.metadata.uid:
            md = md.model_copy(update={"status": ModelDeploymentStatus.model_validate(written[1])})
        image = runtime_image(md, state.config.default_runtime_image)
        rev = naming.revision(md, image)
        observed = Observed(
            deployment=next(
                (d for d in deployments.get(key, []) if d["metadata"]["name"] == md.metadata.name),
                None,
            ),
            pods=list(pods.get(key, [])),
            problem=state.problems.get(key),
        )
        status, transitions = compute_status(md, observed, rev=rev, image=image, now=now_rfc3339())
        state.metrics.set_phase(*key, status.phase)
        payload = status_payload(status)
        if payload == status_payload(md.status):
            return
        try:
            await state.client().patch_status(
                md.api_version, md.kind, md.metadata.namespace, md.metadata.name, payload
            )
        except K8sNotFoundError:
            return
        state.written[key] = (md.metadata.uid, payload)
        for t in transitions:
            kopf.event(
                cast(kopf.Body, body),
                type="Warning" if t.warning else "Normal",
                reason=t.reason,
                message=f"{t.type}={t.status}: {t.message}",
            )


def in_cluster_server(env: Mapping[str, str]) -> str | None:
    """The apiserver address a pod is given (``KUBERNETES_SERVICE_HOST``/``_PORT``), as
    client-go's in-cluster config reads it; None outside a pod."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def applied_revision(indexes: Mapping[str, Any], key: Key, name: str) -> str | None:
    """The revision label on the pod template of the ModelDeployment's Deployment, if indexed."""
    deployments: kopf.Index[Key, dict[str, Any]] = indexes["runtime_deployments"]
    for deployment in deployments.get(key, []):
        if deployment["metadata"]["name"] == name:
            return cast(str | None, deployment["spec"].get("revision"))
    return None


async def sweep(state: OperatorState) -> None:
    """Safety net, one task for the whole operator (not a kopf timer per object, which keeps a
    task and a body alive for each): every ``resync_seconds`` recompute every status, in case a
    change was missed; each is written only if it differs."""
    while True:
        await asyncio.sleep(state.config.resync_seconds)
        if state.indexes is None:  # no handler has run yet: nothing is indexed
            continue
        mdeps: kopf.Index[Key, dict[str, Any]] = state.indexes["mdeps"]
        for key, bodies in list(mdeps.items()):
            for body in list(bodies):
                try:
                    await refresh_status(state, body, state.indexes)
                except K8sError as e:
                    log.warning("status sweep of %s/%s failed: %s", *key, e)
            await asyncio.sleep(0)  # let watch events through between objects


def build_registry(state: OperatorState) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.login(id="login", registry=registry)
    async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
        """The ServiceAccount in a pod, else the kubeconfig; kopf and the operator's own calls
        then share one bounded connection pool (``k8s.client.open_session``)."""
        info = kopf.login_with_service_account(**kwargs)
        server = in_cluster_server(os.environ)
        if info is not None and server:  # kopf assumes cluster DNS; client-go reads the env
            info = dataclasses.replace(info, server=server)
        info = info or kopf.login_with_kubeconfig(**kwargs)
        if info is None:
            return None
        return kopf.AiohttpSession(
            server=info.server, default_namespace=info.default_namespace,
            priority=info.priority, expiration=info.expiration,
            aiohttp_session=state.connect(info),
        )  # fmt: skip

    @kopf.on.cleanup(id="close", registry=registry)
    async def cleanup(**_: Any) -> None:
        await state.close()

    @kopf.index(*resource, id="mdeps", registry=registry)
    async def mdeps(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Key, Any]:
        return {(namespace or "", name): _trim(body)}

    @kopf.index(
        "apps", "v1", "deployments", labels=MANAGED, id="runtime_deployments", registry=registry
    )
    async def runtime_deployments(
        body: kopf.Body, namespace: str | None, labels: kopf.Labels, **_: Any
    ) -> dict[Key, Any] | None:
        owner = labels.get(naming.DEPLOYMENT_LABEL)
        trimmed = _trim(body, spec_keys=("replicas",))
        template = (body.get("spec") or {}).get("template") or {}
        template_labels = (template.get("metadata") or {}).get("labels") or {}
        trimmed["spec"]["revision"] = template_labels.get(naming.REVISION_LABEL)
        return {(namespace or "", owner): trimmed} if owner else None

    @kopf.index("", "v1", "pods", labels=MANAGED, id="runtime_pods", registry=registry)
    async def runtime_pods(
        body: kopf.Body, namespace: str | None, labels: kopf.Labels, **_: Any
    ) -> dict[Key, Any] | None:
        owner = labels.get(naming.DEPLOYMENT_LABEL)
        trimmed = _trim(body, spec_keys=(), status_keys=_POD_STATUS_KEYS)
        return {(namespace or "", owner): trimmed} if owner else None

    @kopf.on.resume(*resource, id="reconcile", registry=registry)
    @kopf.on.create(*resource, id="reconcile", registry=registry)
    @kopf.on.update(*resource, id="reconcile", registry=registry)
    async def reconcile(body: kopf.Body, namespace: str | None, name: str, **kwargs: Any) -> None:
        """Apply the children. On resume after a restart, children whose Deployment already
        carries the desired revision were applied by an earlier run and are left alone: a
        restart with a thousand ModelDeployments then writes nothing."""
        started = time.perf_counter()
        key: Key = (namespace or "", name)
        indexes = state.keep_indexes(kwargs)
        resuming = kwargs.get("reason") == kopf.Reason.RESUME
        try:
            md = parse(body)
            image = runtime_image(md, state.config.default_runtime_image)
            rev = naming.revision(md, image)
            async with state.reconcile_slot():
                state.problems[key] = await check_secrets(state, md)
                if not (resuming and applied_revision(indexes, key, name) == rev):
                    await apply_children(state, md, image, rev)
        except SpecError as e:
            state.metrics.reconcile_total.labels("error").inc()
            kopf.warn(body, reason=e.reason, message=e.message)
            raise kopf.PermanentError(e.message) from e
        except K8sInvalidError as e:
            # The CRD let it through but a child object is invalid (e.g. a malformed toleration):
            # the spec must change, so say so in the status instead of retrying.
            state.metrics.reconcile_total.labels("error").inc()
            state.problems[key] = Problem("InvalidSpec", e.message)
            await refresh_status(state, _trim(body), kwargs)
            raise kopf.PermanentError(e.message) from e
        except K8sError as e:
            result = "retry" if e.retryable else "error"
            state.metrics.reconcile_total.labels(result).inc()
            if e.retryable:
                delay = min(RETRY_BASE * 2 ** int(kwargs.get("retry", 0)), RETRY_CAP)
                raise kopf.TemporaryError(e.message, delay=delay) from e
            raise kopf.PermanentError(e.message) from e
        state.metrics.reconcile_duration.observe(time.perf_counter() - started)
        log.info("reconciled %s/%s revision %s", namespace, name, rev)
        await refresh_status(state, _trim(body), kwargs)
        problem = state.problems.get(key)
        state.metrics.reconcile_total.labels("retry" if problem else "success").inc()
        if problem:
            raise kopf.TemporaryError(problem.message, delay=state.config.secret_recheck_seconds)

    @kopf.on.event("apps", "v1", "deployments", labels=MANAGED, id="child", registry=registry)
    @kopf.on.event("", "v1", "pods", labels=MANAGED, id="child", registry=registry)
    async def child_changed(namespace: str | None, labels: kopf.Labels, **kwargs: Any) -> None:
        """Refresh the owner's status soon: a burst of pod events becomes one status write."""
        owner = labels.get(naming.DEPLOYMENT_LABEL)
        if not owner:
            return
        key: Key = (namespace or "", owner)
        state.keep_indexes(kwargs)

        async def refresh_later() -> None:
            await asyncio.sleep(state.config.status_debounce_seconds)
            # Under load the ModelDeployment's own watch can lag its children's: wait for it.
            for _ in range(MISSING_OWNER_RETRIES):
                if key in kwargs["mdeps"]:
                    break
                await asyncio.sleep(state.config.status_debounce_seconds or 0.1)
            state.pending.pop(key, None)
            try:
                for body in kwargs["mdeps"].get(key, []):
                    await refresh_status(state, body, kwargs)
            except K8sError as e:  # the sweep writes it later
                log.warning("status of %s/%s not written: %s", *key, e)

        if key not in state.pending:
            state.pending[key] = asyncio.create_task(refresh_later(), name=f"refresh {key}")

    @kopf.on.startup(id="sweep", registry=registry)
    async def start_sweep(**_: Any) -> None:
        state.sweeper = asyncio.create_task(sweep(state), name="status sweep")

    @kopf.on.delete(*resource, id="cleanup", registry=registry)
    async def deleted(namespace: str | None, name: str, **_: Any) -> None:
        """Children go with their owner references; drop what the operator keeps about it."""
        state.forget((namespace or "", name))
        log.info(
            "ModelDeployment %s/%s deleted; its children are garbage-collected", namespace, name
        )

    return registry

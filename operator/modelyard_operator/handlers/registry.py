"""kopf glue: binds kopf's events to the ``Controller`` and maps its errors onto kopf. No
decisions here.

``build_registry`` returns an explicit ``kopf.OperatorRegistry``: indexes of ModelDeployments
and their runtime Deployments, pods and HPAs; a spec handler (create, update, resume) that checks
Secrets, applies the Service, PDB and HPA and syncs; child events that schedule a debounced
sync of their owner; a startup handler that runs the one scheduler loop and the periodic
sweep. ``SpecError`` becomes a ``PermanentError`` with a Warning; a rejected child a status
condition and a ``TemporaryError``; any other API error (an outage, a 403 while RBAC loads) a
``TemporaryError`` with exponential backoff: nothing is given up on for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import kopf

from modelyard_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from modelyard_operator.controller.sync import Controller
from modelyard_operator.controller.view import (
    View,
    owner,
    trim,
    trim_deployment,
    trim_hpa,
    trim_pod,
)
from modelyard_operator.errors import SpecError
from modelyard_operator.handlers.connection import Connection
from modelyard_operator.k8s.errors import K8sError, K8sInvalidError
from modelyard_operator.reconcile import naming

log = logging.getLogger(__name__)
MANAGED = {"app.kubernetes.io/managed-by": naming.MANAGED_BY}
# HPAs of ModelDeployments: ours, and those KEDA makes from our ScaledObjects (KEDA copies the
# ScaledObject's labels but marks itself the manager).
SCALED = {naming.DEPLOYMENT_LABEL: kopf.PRESENT}
# Seconds: backoff for conflicts and API errors. Capped low, as client-go's reflector is: after
# an outage every object is tried again within 30 s of the API's return (at a 5 min cap, an
# object that failed through a long etcd outage waited minutes more).
RETRY_BASE, RETRY_CAP = 2.0, 30.0
Key = tuple[str, str]


def in_cluster_server(env: Mapping[str, str]) -> str | None:
    """The apiserver address a pod is given (``KUBERNETES_SERVICE_HOST``/``_PORT``), as
    client-go's in-cluster config reads it; None outside a pod."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def keep_indexes(controller: Controller, kwargs: Mapping[str, Any]) -> None:
    """kopf's live indexes come with every handler's kwargs: the controller reads them."""
    if not isinstance(controller.view.mdeps, dict):
        return
    controller.view = View(kwargs["mdeps"], kwargs["runtime_deployments"], kwargs["runtime_pods"],
                           kwargs["runtime_hpas"])  # fmt: skip


def retry_delay(kwargs: Mapping[str, Any]) -> float:
    return float(min(RETRY_BASE * 2 ** int(kwargs.get("retry", 0)), RETRY_CAP))


async def sweep(controller: Controller) -> None:
    """Safety net, one task for the whole operator: every ``resync_seconds`` every object is
    synced again, spread over the period, in case an event was missed (nothing is written when
    all is already right)."""
    period = controller.config.resync_seconds
    while True:
        await asyncio.sleep(period)
        keys = controller.view.keys()
        for index, key in enumerate(keys):
            controller.later(key, period * index / max(len(keys), 1))


async def handle_spec(
    controller: Controller, key: Key, body: Mapping[str, Any], *, resuming: bool, retry: int
) -> None:
    """A create, update or resume, with the operator's errors mapped onto kopf's: a spec that
    cannot be reconciled is a ``PermanentError`` (and a Warning Event); a child the apiserver
    rejects becomes a status condition, retried with backoff; a retryable API error is a
    ``TemporaryError`` with exponential backoff; a missing Secret is checked again later."""
    started = time.perf_counter()
    metrics = controller.metrics
    try:
        async with controller.reconcile_slot():
            await controller.on_spec(key, body, resuming=resuming)
    except SpecError as e:
        metrics.reconcile_total.labels("error").inc()
        await controller.warn(key, body, e.reason, e.message)
        raise kopf.PermanentError(e.message) from e
    except K8sInvalidError as e:
        # The CRD let it through but a child object is invalid (e.g. a malformed toleration):
        # say so in the status. Then try again, slowly: an apiserver shutting down also answers
        # 422 (``failed to allocate IP`` for a Service), and a fixed spec starts afresh anyway.
        metrics.reconcile_total.labels("error").inc()
        log.warning("%s/%s: the apiserver rejects a child: %s", *key, e.message)
        controller.report_problem(key, "InvalidSpec", e.message)
        with contextlib.suppress(K8sError):  # the apiserver away: the retry writes it
            await controller.sync(key)
        raise kopf.TemporaryError(e.message, delay=retry_delay({"retry": retry})) from e
    except K8sError as e:
        metrics.reconcile_total.labels("retry" if e.retryable else "error").inc()
        if e.retryable:
            raise kopf.TemporaryError(e.message, delay=retry_delay({"retry": retry})) from e
        raise kopf.PermanentError(e.message) from e
    metrics.reconcile_duration.observe(time.perf_counter() - started)
    problem = controller.memory.problems.get(key)
    metrics.reconcile_total.labels("retry" if problem else "success").inc()
    if problem:
        raise kopf.TemporaryError(problem.message, delay=controller.config.secret_recheck_seconds)


def build_registry(controller: Controller, connection: Connection) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (GROUP, VERSION, PLURAL)
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.login(id="login", registry=registry)
    async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
        """The ServiceAccount in a pod, else the kubeconfig; kopf and the operator's own calls
        then share one bounded connection pool."""
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
            aiohttp_session=connection.connect(info),
        )  # fmt: skip

    @kopf.on.startup(id="loops", registry=registry)
    async def start_loops(**_: Any) -> None:
        scheduler = controller.start_scheduler()
        tasks.append(asyncio.create_task(scheduler.loop(), name="rollout scheduler"))
        tasks.append(asyncio.create_task(sweep(controller), name="sweep"))

    @kopf.on.cleanup(id="close", registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if controller.scheduler is not None:
            await controller.scheduler.close()
        await connection.close()

    @kopf.index(*resource, id="mdeps", registry=registry)
    async def mdeps(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Key, Any]:
        return {(namespace or "", name): trim(body)}

    @kopf.index(
        "apps", "v1", "deployments", labels=MANAGED, id="runtime_deployments", registry=registry
    )
    async def runtime_deployments(body: kopf.Body, namespace: str | None, **_: Any) -> Any:
        who = owner(body)
        return {(namespace or "", who): trim_deployment(body)} if who else None

    @kopf.index("", "v1", "pods", labels=MANAGED, id="runtime_pods", registry=registry)
    async def runtime_pods(body: kopf.Body, namespace: str | None, **_: Any) -> Any:
        who = owner(body)
        return {(namespace or "", who): trim_pod(body)} if who else None

    @kopf.index(
        "autoscaling", "v2", "horizontalpodautoscalers", labels=SCALED, id="runtime_hpas",
        registry=registry,
    )  # fmt: skip
    async def runtime_hpas(body: kopf.Body, namespace: str | None, **_: Any) -> Any:
        who = owner(body)
        return {(namespace or "", who): trim_hpa(body)} if who else None

    @kopf.on.resume(*resource, id="reconcile", registry=registry)
    @kopf.on.create(*resource, id="reconcile", registry=registry)
    @kopf.on.update(*resource, id="reconcile", registry=registry)
    async def reconcile(body: kopf.Body, namespace: str | None, name: str, **kwargs: Any) -> None:
        keep_indexes(controller, kwargs)
        await handle_spec(
            controller, (namespace or "", name), body,
            resuming=kwargs.get("reason") == kopf.Reason.RESUME, retry=int(kwargs.get("retry", 0)),
        )  # fmt: skip

    @kopf.on.event("apps", "v1", "deployments", labels=MANAGED, id="child", registry=registry)
    @kopf.on.event("", "v1", "pods", labels=MANAGED, id="child", registry=registry)
    @kopf.on.event(
        "autoscaling", "v2", "horizontalpodautoscalers", labels=SCALED, id="child",
        registry=registry,
    )  # fmt: skip
    async def child_changed(namespace: str | None, body: kopf.Body, **kwargs: Any) -> None:
        """Sync the owner soon: a burst of pod events becomes one sync."""
        who = owner(body)
        if who:
            keep_indexes(controller, kwargs)
            controller.later((namespace or "", who), controller.config.status_debounce_seconds)

    @kopf.on.event(*resource, id="action", registry=registry)
    async def action(
        namespace: str | None, name: str, annotations: kopf.Annotations, **kwargs: Any
    ) -> None:
        """An action annotation (promote, abort...) is acted on at once, spec change or not."""
        if naming.ACTION_ANNOTATION in annotations:
            keep_indexes(controller, kwargs)
            controller.later((namespace or "", name), 0.0)

    @kopf.on.delete(*resource, id="cleanup", registry=registry)
    async def deleted(namespace: str | None, name: str, **_: Any) -> None:
        """Children go with their owner references; drop what the operator keeps about it."""
        controller.forget((namespace or "", name))
        log.info(
            "ModelDeployment %s/%s deleted; its children are garbage-collected", namespace, name
        )

    return registry

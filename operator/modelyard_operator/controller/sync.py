"""``Controller``: brings one ModelDeployment's children and status to what its spec asks.

``sync`` is the one path every trigger takes (a spec change, a child's event, a due rollout
step, the periodic sweep): read the object and its children from the indexes, run the canary
analysis when due, ask ``reconcile.rollout`` for the next step and ``reconcile.status`` for the
status, then write: the status first (it holds the rollout's state, so a crash after it loses
nothing), the Deployments, the action annotation's removal, the Events. ``on_spec`` also checks
the referenced Secrets and applies the Service, PDB and HPA. Errors are ``SpecError`` or
``K8sError``; ``handlers`` maps them onto kopf.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from modelyard_operator.analysis import queries
from modelyard_operator.analysis.run import analyse
from modelyard_operator.analysis.source import MetricsSource
from modelyard_operator.api.timefmt import rfc3339
from modelyard_operator.api.v1alpha1 import ModelDeployment, ModelDeploymentStatus, ObjectMeta
from modelyard_operator.config import OperatorConfig
from modelyard_operator.controller import children, events
from modelyard_operator.controller.memory import Key, Memory
from modelyard_operator.controller.scheduler import Scheduler
from modelyard_operator.controller.secrets import check_secrets
from modelyard_operator.controller.view import View
from modelyard_operator.errors import SpecError
from modelyard_operator.k8s.api import KubeClient
from modelyard_operator.k8s.errors import K8sError, K8sNotFoundError
from modelyard_operator.metrics import OperatorMetrics
from modelyard_operator.reconcile import naming, rollout
from modelyard_operator.reconcile.autoscaling import scaling_event
from modelyard_operator.reconcile.children import runtime_image
from modelyard_operator.reconcile.network import with_network_defaults
from modelyard_operator.reconcile.observed import Problem, Track, first_failure, track_of
from modelyard_operator.reconcile.status import Observed, Transition, compute_status
from modelyard_runtime.contract.names import ACTION_ANNOTATION

log = logging.getLogger(__name__)


def parse(body: Mapping[str, Any]) -> ModelDeployment:
    try:
        return ModelDeployment.model_validate(dict(body))
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SpecError("InvalidSpec", f"{where}: {first['msg']}") from e


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass
class Controller:
    config: OperatorConfig
    client: KubeClient
    view: View
    metrics: OperatorMetrics = dataclasses.field(default_factory=OperatorMetrics)
    source: MetricsSource | None = None
    clock: Callable[[], datetime.datetime] = utcnow
    identity: str = "modelyard-operator"
    memory: Memory = dataclasses.field(default_factory=Memory)
    scheduler: Scheduler | None = None  # set by ``start``; without it nothing is requeued

    _reconciles: asyncio.Semaphore | None = None

    def reconcile_slot(self) -> asyncio.Semaphore:
        """Bounds the spec handlers writing children at once (created on the running loop)."""
        if self._reconciles is None:
            self._reconciles = asyncio.Semaphore(self.config.max_concurrent_reconciles)
        return self._reconciles

    def start_scheduler(self) -> Scheduler:
        self.scheduler = Scheduler(self.sync, concurrency=self.config.max_concurrent_reconciles)
        return self.scheduler

    def later(self, key: Key, delay: float) -> None:
        if self.scheduler is not None:
            self.scheduler.due(key, delay)

    def with_defaults(self, md: ModelDeployment) -> ModelDeployment:
        """``md`` with the operator's defaults for what its spec leaves to the operator."""
        return with_network_defaults(
            md,
            enabled=self.config.network_policy_default,
            monitoring_namespace=self.config.monitoring_namespace,
        )

    def current(self, key: Key) -> ModelDeployment | None:
        """The object as indexed, with the status this operator last wrote (the watch may lag)."""
        body = self.view.md(key)
        if body is None:
            return None
        md = self.with_defaults(parse(body))
        written = self.memory.written.get(key)
        if written and written[0] == md.metadata.uid:
            md = md.model_copy(update={"status": ModelDeploymentStatus.model_validate(written[1])})
        return md

    async def on_spec(self, key: Key, body: Mapping[str, Any], *, resuming: bool) -> None:
        """A create, update or resume: check Secrets, apply Service/PDB/HPA, then sync. On a
        resume of an unchanged object (its status saw this generation) nothing is written."""
        md = self.with_defaults(parse(body))
        problem = await check_secrets(self.client, md)
        generation = md.metadata.generation
        if not (resuming and md.status.observed_generation == generation):
            # A child rejected before (``InvalidSpec``) stays reported until this succeeds.
            await children.apply_static(
                self.client, md, prometheus_url=self.config.keda_prometheus_url
            )
        self.memory.problems[key] = problem
        self.memory.static_generation[key] = generation
        await self.sync(key)
        image = runtime_image(md, self.config.default_runtime_image)
        log.info("reconciled %s/%s revision %s", *key, naming.revision(md, image))

    async def warn(self, key: Key, body: Mapping[str, Any], reason: str, message: str) -> None:
        """A Warning Event on an object whose spec cannot even be parsed."""
        meta = body.get("metadata") or {}
        md = ModelDeployment.model_construct(
            metadata=ObjectMeta(name=key[1], namespace=key[0], uid=meta.get("uid", ""))
        )
        await self._post(md, (rollout.Event(reason, message, warning=True),), [], self.clock())

    def report_problem(self, key: Key, reason: str, message: str) -> None:
        self.memory.problems[key] = Problem(reason, message)

    async def sync(self, key: Key) -> float | None:
        """One step for ``key``; returns when to look again (None: on the next event)."""
        async with self.memory.locks[key]:
            try:
                md = self.current(key)
            except SpecError as e:
                log.warning("%s/%s cannot be parsed: %s", *key, e.message)
                return None
            if md is None:
                return None
            requeue = await self._step(key, md)
        if requeue is not None:
            self.later(key, requeue)
        return None

    async def _step(self, key: Key, md: ModelDeployment) -> float | None:
        now = self.clock()
        image = runtime_image(md, self.config.default_runtime_image)
        rev = naming.revision(md, image)
        stable_body, canary_body = self.view.tracks(key, md.metadata.name)
        pods = self.view.pods_of(key)
        canary_pods = [p for p in pods if track_of(p) == "canary"]
        failure = first_failure(canary_pods, md.status.canary.revision)
        situation = rollout.Situation(
            md=md,
            revision=rev,
            stable=Track.of(stable_body),
            canary=Track.of(canary_body),
            canary_failure=f"{failure.reason}: {failure.message}" if failure else None,
            action=md.metadata.annotations.get(ACTION_ANNOTATION),
            now=now,
        )
        if rollout.analysis_due(situation):
            situation = dataclasses.replace(situation, analysis=await self._analyse(md))
        plan = rollout.plan(situation)
        observed = Observed(situation.stable, situation.canary, pods,
                            self.memory.problems.get(key), self.view.hpa(key))  # fmt: skip
        status, transitions = compute_status(md, observed, plan, rev=rev, image=image,
                                             now=rfc3339(now))  # fmt: skip
        if not self._static_done(key, md):
            status = status.model_copy(
                update={"observed_generation": md.status.observed_generation}
            )
        if not await self._write_status(key, md, status):
            return None  # deleted meanwhile
        await children.apply_tracks(
            self.client, self.memory, key, md, image=image, rev=rev, plan=plan,
            live=(stable_body, canary_body),
        )  # fmt: skip
        if plan.action_taken is not None:
            await self._clear_action(md, plan.action_taken)
        resized = scaling_event(md.status.autoscaling, status.autoscaling)
        events = (*plan.events, rollout.Event(*resized)) if resized else plan.events
        await self._post(md, events, transitions, now)
        self._record(md, status, plan, situation.analysis)
        return plan.requeue_after

    def _static_done(self, key: Key, md: ModelDeployment) -> bool:
        generation = md.metadata.generation
        done = self.memory.static_generation.get(key) == generation
        return done or md.status.observed_generation == generation

    async def _analyse(self, md: ModelDeployment) -> Any:
        spec = md.spec.rollout.analysis
        window = queries.Window(
            namespace=md.metadata.namespace,
            name=naming.model_name(md),
            canary_revision=md.status.canary.revision,
            stable_revision=md.status.stable.revision,
            interval=spec.interval,
        )
        return await analyse(
            md.spec.rollout.resolved_metrics(), window, source=self.source,
            min_samples=spec.min_sample_count, now=self.clock(),
        )  # fmt: skip

    async def _write_status(
        self, key: Key, md: ModelDeployment, status: ModelDeploymentStatus
    ) -> bool:
        payload = status.model_dump(mode="json", by_alias=True)
        if payload == md.status.model_dump(mode="json", by_alias=True):
            return True
        try:
            await self.client.patch_status(
                md.api_version, md.kind, md.metadata.namespace, md.metadata.name, payload
            )
        except K8sNotFoundError:
            return False
        self.memory.written[key] = (md.metadata.uid, payload)
        return True

    async def _clear_action(self, md: ModelDeployment, action: str) -> None:
        patch = {"metadata": {"annotations": {ACTION_ANNOTATION: None}}}
        try:
            await self.client.patch(
                md.api_version, md.kind, md.metadata.namespace, md.metadata.name, patch
            )
        except K8sNotFoundError:
            return
        log.info("acted on %s of %s/%s", action, md.metadata.namespace, md.metadata.name)

    async def _post(
        self,
        md: ModelDeployment,
        rollout_events: tuple[rollout.Event, ...],
        transitions: list[Transition],
        now: datetime.datetime,
    ) -> None:
        items = [(e.reason, e.message, e.warning) for e in rollout_events]
        items += [(t.reason, f"{t.type}={t.status}: {t.message}", t.warning) for t in transitions]
        for reason, message, warning in items:
            body = events.event(md, reason=reason, message=message, warning=warning,
                                now=rfc3339(now.replace(microsecond=0)),
                                instance=self.identity)  # fmt: skip
            try:
                await self.client.create(body)
            except K8sError as e:
                log.warning("event %s for %s/%s not written: %s", reason,
                            md.metadata.namespace, md.metadata.name, e)  # fmt: skip

    def _record(self, md: ModelDeployment, status: ModelDeploymentStatus, plan: rollout.Plan,
                analysis: Any) -> None:  # fmt: skip
        namespace, name = md.metadata.namespace, md.metadata.name
        self.metrics.set_phase(namespace, name, status.phase)
        self.metrics.set_canary_weight(
            namespace, name, status.canary.weight if status.canary.revision else None
        )
        if plan.started:
            self.metrics.rollout_started(namespace, name)
        if plan.ending is not None:
            self.metrics.rollout_ended(namespace, name, plan.ending.result)
        if analysis is not None:
            for check in analysis.checks:
                self.metrics.check_done(namespace, name, check.metric, check.result)

    def forget(self, key: Key) -> None:
        self.memory.forget(key)
        self.metrics.forget(*key)
        if self.scheduler is not None:
            self.scheduler.cancel(key)

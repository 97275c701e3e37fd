"""Leader election on a ``coordination.k8s.io/v1`` Lease: several operator replicas, one acting.

``__main__`` calls ``LeaderElection.acquire`` before kopf starts. A standby replica waits there,
serving ``/healthz`` on the health port (``standby_health``) so that its liveness probe passes,
until the Lease is free, then takes it. While kopf runs, ``hold`` renews the Lease every retry
period and calls ``on_lost`` (which stops kopf) when it could not renew for the renew deadline or
found another holder; should kopf not have stopped by the time a standby may take over, the
process exits. ``release`` clears the holder on a clean stop, so a standby takes over within one
retry period instead of one lease duration.

The rules are client-go's (``k8s.io/client-go/tools/leaderelection``): a standby counts a Lease
as expired when it has seen the same record, unchanged, for the lease duration on its *own*
clock, so no clocks are compared across machines; the leader stops acting once a renew deadline
has passed without a renewal, which is shorter than the lease duration, so it stops before a
standby may take over. Every write carries the ``resourceVersion`` it read, so of two standbys
racing for a free Lease one gets a 409 and stays standby.

``observe`` and ``may_take`` are the pure decision; ``LeaderElection`` is the loop around the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import aiohttp
import kopf
from aiohttp import web

from modelyard_operator import __version__
from modelyard_operator.config import OperatorConfig
from modelyard_operator.errors import ConfigError, ModelyardOperatorError
from modelyard_operator.handlers.registry import in_cluster_server
from modelyard_operator.k8s.client import HttpKubeClient, open_session
from modelyard_operator.k8s.errors import K8sError, K8sNotFoundError
from modelyard_operator.reconcile.naming import FIELD_MANAGER

log = logging.getLogger(__name__)
API_VERSION: Final = "coordination.k8s.io/v1"
SA_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
Object = dict[str, Any]


class LeaseClient(Protocol):
    """The calls leader election makes (``HttpKubeClient`` is one)."""

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object: ...
    async def create(self, obj: Mapping[str, Any]) -> Object: ...
    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object: ...


@dataclasses.dataclass(frozen=True)
class Record:
    """What a Lease says: who holds it, for how long, and the version that was read."""

    holder: str
    duration: float
    transitions: int
    resource_version: str

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=float(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(lease["metadata"]["resourceVersion"]),
        )


@dataclasses.dataclass(frozen=True)
class Observation:
    """A record and when (this process's monotonic clock) it was first seen as it is."""

    record: Record | None
    since: float


def observe(previous: Observation | None, record: Record | None, now: float) -> Observation:
    """Keep the time of the first sighting while the Lease is unchanged (same resourceVersion:
    any renewal changes it); a changed or new record starts a new observation."""
    unchanged = (
        previous is not None
        and previous.record is not None
        and record is not None
        and previous.record.resource_version == record.resource_version
    )
    return previous if unchanged and previous is not None else Observation(record, now)


def may_take(observation: Observation, identity: str, now: float) -> bool:
    """Whether ``identity`` may write itself into the Lease now: it is absent, released, already
    ours, or unchanged for longer than its duration."""
    record = observation.record
    if record is None or not record.holder or record.holder == identity:
        return True
    return now >= observation.since + record.duration


def micro_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_namespace(config: OperatorConfig, environ: Mapping[str, str], sa_file: Path) -> str:
    """The configured namespace, else the pod's (downward API), else the ServiceAccount's."""
    if config.leader_election_namespace:
        return config.leader_election_namespace
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    if sa_file.exists():
        return sa_file.read_text().strip()
    raise ConfigError(
        "leader election needs a namespace for its Lease: set leader_election_namespace "
        "(env MODELYARD_OPERATOR_LEADER_ELECTION_NAMESPACE) or POD_NAMESPACE"
    )


class LeaderElection:
    def __init__(
        self,
        client: LeaseClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.client = client
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock, self.wall, self.exit_process = clock, wall, exit_process
        self.observation: Observation | None = None
        self.leading = False
        self.lost = False

    @classmethod
    def from_config(
        cls, client: LeaseClient, config: OperatorConfig, *, identity: str, namespace: str
    ) -> LeaderElection:
        return cls(
            client,
            namespace=namespace,
            name=config.leader_election_lease_name,
            identity=identity,
            lease_duration=config.leader_election_lease_duration_seconds,
            renew_deadline=config.leader_election_renew_deadline_seconds,
            retry_period=config.leader_election_retry_period_seconds,
        )

    def _spec(self, record: Record | None) -> dict[str, Any]:
        now = micro_time(self.wall())
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": now,
        }
        if record is None or record.holder != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = (record.transitions + 1) if record else 0
        return spec

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: read the Lease, and write this process in as holder if it may."""
        try:
            lease: Object | None = await self.client.get(
                API_VERSION, "Lease", self.namespace, self.name
            )
        except K8sNotFoundError:
            lease = None
        record = Record.of(lease) if lease else None
        self.observation = observe(self.observation, record, self.clock())
        if record is not None and record.holder != self.identity and self.leading:
            self.leading, self.lost = False, True  # someone took it over: never act on
            return False
        if not may_take(self.observation, self.identity, self.clock()):
            return False
        if record is None:
            await self.client.create({
                "apiVersion": API_VERSION, "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(None),
            })  # fmt: skip
        else:
            patch = {"metadata": {"resourceVersion": record.resource_version},
                     "spec": self._spec(record)}  # fmt: skip
            await self.client.patch(API_VERSION, "Lease", self.namespace, self.name, patch)
        if not self.leading:
            log.info("leader election: %s now holds Lease %s/%s", self.identity,
                     self.namespace, self.name)  # fmt: skip
        self.leading = True
        return True

    async def _attempt(self, budget: float) -> bool:
        try:
            async with asyncio.timeout(budget):
                return await self.try_acquire_or_renew()
        except (K8sError, TimeoutError) as e:  # a 409 too: someone else wrote first
            log.debug("leader election: attempt failed: %s", e)
            return False

    async def acquire(self) -> None:
        """Wait until this process holds the Lease."""
        log.info("leader election: %s waiting for Lease %s/%s", self.identity,
                 self.namespace, self.name)  # fmt: skip
        while True:
            if await self._attempt(self.renew_deadline):
                return
            await asyncio.sleep(self.retry_period)  # the poll interval, as client-go's

    async def hold(self, on_lost: Callable[[], None]) -> None:
        """Renew every retry period; on loss call ``on_lost`` once, and exit the process if it
        is still running when a standby may take over."""
        renewed = self.clock()
        while True:
            await asyncio.sleep(self.retry_period)
            budget = renewed + self.renew_deadline - self.clock()
            if budget > 0 and await self._attempt(budget):
                renewed = self.clock()
                continue
            if self.lost or self.clock() - renewed >= self.renew_deadline:
                break
        self.leading, self.lost = False, True
        log.error("leader election: %s lost Lease %s/%s; stopping", self.identity,
                  self.namespace, self.name)  # fmt: skip
        on_lost()
        await asyncio.sleep(max(self.lease_duration - self.renew_deadline, 0) / 2)
        log.critical("leader election: still running after losing the Lease; exiting")
        self.exit_process(1)

    async def release(self) -> None:
        """Give the Lease up (holder cleared) so a standby takes over at its next check."""
        if not self.leading or self.observation is None:
            return
        self.leading = False
        try:
            lease = await self.client.get(API_VERSION, "Lease", self.namespace, self.name)
            record = Record.of(lease)
            if record.holder != self.identity:
                return
            patch = {
                "metadata": {"resourceVersion": record.resource_version},
                "spec": {"holderIdentity": None, "leaseDurationSeconds": 1,
                         "renewTime": micro_time(self.wall())},
            }  # fmt: skip
            await self.client.patch(API_VERSION, "Lease", self.namespace, self.name, patch)
            log.info("leader election: %s released Lease %s/%s", self.identity,
                     self.namespace, self.name)  # fmt: skip
        except K8sError as e:
            log.warning("leader election: could not release the Lease: %s", e)


def election_identity(identity: str) -> str:
    """Unique per process, as client-go's ``hostname_uuid``: two processes on one host (or a
    restarted container in the same pod) never share an identity."""
    return f"{identity}_{uuid.uuid4().hex[:8]}"


def login(settings: kopf.OperatorSettings) -> Any:
    """The ServiceAccount in a pod (with the apiserver from the env), else the kubeconfig: the
    same credentials kopf's login handler finds (``handlers.registry``)."""
    info = kopf.login_with_service_account(settings=settings)
    server = in_cluster_server(os.environ)
    if info is not None and server:
        info = dataclasses.replace(info, server=server)
    info = info or kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise ConfigError("leader election: no ServiceAccount and no kubeconfig to log in with")
    return info


def lease_client(settings: kopf.OperatorSettings) -> tuple[HttpKubeClient, aiohttp.ClientSession]:
    """A small connection pool of its own: the Lease is renewed even while kopf's is busy."""
    info = login(settings)
    session = open_session(info, limit=2, user_agent=f"modelyard-operator/{__version__}")
    return HttpKubeClient(session, info.server, field_manager=FIELD_MANAGER), session


async def standby_health(port: int) -> web.AppRunner:
    """``/healthz`` while on standby (kopf serves it once this replica leads)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"standby": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


class LeadershipLostError(ModelyardOperatorError):
    """This replica stopped acting because another one holds the Lease now."""


@contextlib.asynccontextmanager
async def leadership(
    config: OperatorConfig, settings: kopf.OperatorSettings, identity: str
) -> AsyncIterator[asyncio.Event]:
    """Enter once this process may act; yields kopf's stop flag (set when the Lease is lost).
    Without ``leader_election`` it enters at once and the flag is never set."""
    stop = asyncio.Event()
    if not config.leader_election:
        yield stop
        return
    namespace = lease_namespace(config, os.environ, SA_NAMESPACE)
    client, session = lease_client(settings)
    election = LeaderElection.from_config(
        client, config, identity=election_identity(identity), namespace=namespace
    )
    holder: asyncio.Task[None] | None = None
    try:
        health = await standby_health(config.health_port)
        try:
            await election.acquire()
        finally:
            await health.cleanup()
        holder = asyncio.create_task(election.hold(stop.set), name="leader election")
        yield stop
    finally:
        if holder is not None:
            holder.cancel()
            await asyncio.gather(holder, return_exceptions=True)
        await election.release()
        await session.close()
    if election.lost:
        raise LeadershipLostError(f"{election.identity} lost Lease {namespace}/{election.name}")

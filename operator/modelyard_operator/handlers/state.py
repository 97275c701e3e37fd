"""What the handlers share for the operator's lifetime: config, metrics, the API client, caches.

``OperatorState`` is built once in ``__main__`` and closed over by the registry's handlers (no
globals). The client is created on first use from the credentials the login handler stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from typing import Any

import aiohttp

from modelyard_operator import __version__
from modelyard_operator.config import OperatorConfig
from modelyard_operator.k8s.client import Credentials, KubeClient, open_session
from modelyard_operator.metrics import OperatorMetrics
from modelyard_operator.reconcile.naming import FIELD_MANAGER
from modelyard_operator.reconcile.status import Problem

Key = tuple[str, str]
INDEXES = ("mdeps", "runtime_deployments", "runtime_pods")
# Connections per reconcile slot: each reconcile writes three children, and kopf's three watch
# streams, its finalizer and annotation patches and the status writes share the pool. A pool of
# 24 (one per slot plus 8) made a burst of 1,000 creates queue in the operator: p99 from create
# to Deployment went from 45 s to 108 s (BENCHMARKS.md).
POOL_PER_RECONCILE = 4


@dataclasses.dataclass
class OperatorState:
    config: OperatorConfig
    metrics: OperatorMetrics = dataclasses.field(default_factory=OperatorMetrics)
    credentials: Credentials | None = None
    problems: dict[Key, Problem | None] = dataclasses.field(default_factory=dict)
    # The status this operator last wrote, keyed by (namespace, name) and the object's uid: newer
    # than what the watch has delivered yet, so a quick second refresh does not repeat events.
    written: dict[Key, tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)
    # Debounced status refreshes waiting to run, one per ModelDeployment at most.
    pending: dict[Key, asyncio.Task[None]] = dataclasses.field(default_factory=dict)
    locks: defaultdict[Key, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    # kopf's live indexes (mdeps, runtime_deployments, runtime_pods), kept from the first
    # handler call for the operator-wide status sweep, which kopf gives no kwargs.
    indexes: dict[str, Any] | None = None
    sweeper: asyncio.Task[None] | None = None
    session: aiohttp.ClientSession | None = None
    _stale_sessions: list[aiohttp.ClientSession] = dataclasses.field(default_factory=list)
    _client: KubeClient | None = None
    _reconciles: asyncio.Semaphore | None = None

    def reconcile_slot(self) -> asyncio.Semaphore:
        """Bounds the reconciles writing children at once (created on the running loop)."""
        if self._reconciles is None:
            self._reconciles = asyncio.Semaphore(self.config.max_concurrent_reconciles)
        return self._reconciles

    def connect(self, credentials: Credentials) -> aiohttp.ClientSession:
        """A new shared session for these credentials (a login, or a re-login after a 401)."""
        if self.session is not None:
            self._stale_sessions.append(self.session)  # kopf may still be reading from it
        self.credentials = credentials
        self.session = open_session(
            credentials,
            limit=self.config.max_concurrent_reconciles * POOL_PER_RECONCILE,
            user_agent=f"modelyard-operator/{__version__}",
        )
        self._client = None
        return self.session

    def client(self) -> KubeClient:
        if self._client is None:
            if self.credentials is None or self.session is None:
                raise RuntimeError("no credentials yet: the login handler has not run")
            self._client = KubeClient(
                self.session, self.credentials.server, field_manager=FIELD_MANAGER
            )
        return self._client

    def keep_indexes(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The indexes from a handler's kwargs, remembered for the sweep; returns them."""
        if self.indexes is None:
            self.indexes = {name: kwargs[name] for name in INDEXES}
        return self.indexes

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            await asyncio.gather(self.sweeper, return_exceptions=True)
            self.sweeper = None
        for task in list(self.pending.values()):
            task.cancel()
        await asyncio.gather(*self.pending.values(), return_exceptions=True)
        self.pending.clear()
        self._client = None
        for session in [*self._stale_sessions, self.session]:
            if session is not None:
                await session.close()
        self._stale_sessions.clear()
        self.session = None

    def forget(self, key: Key) -> None:
        task = self.pending.pop(key, None)
        if task is not None:
            task.cancel()
        self.problems.pop(key, None)
        self.written.pop(key, None)
        self.locks.pop(key, None)
        self.metrics.forget(*key)

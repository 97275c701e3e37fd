"""What the handlers share for the operator's lifetime: config, metrics, the API client, caches.

``OperatorState`` is built once in ``__main__`` and closed over by the registry's handlers (no
globals). The client is created on first use from the credentials the login handler stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from typing import Any

from modelyard_operator.config import OperatorConfig
from modelyard_operator.k8s.client import Credentials, KubeClient
from modelyard_operator.metrics import OperatorMetrics
from modelyard_operator.reconcile.naming import FIELD_MANAGER
from modelyard_operator.reconcile.status import Problem

Key = tuple[str, str]
INDEXES = ("mdeps", "runtime_deployments", "runtime_pods")


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
    _client: KubeClient | None = None
    _reconciles: asyncio.Semaphore | None = None

    def reconcile_slot(self) -> asyncio.Semaphore:
        """Bounds the reconciles writing children at once (created on the running loop)."""
        if self._reconciles is None:
            self._reconciles = asyncio.Semaphore(self.config.max_concurrent_reconciles)
        return self._reconciles

    def client(self) -> KubeClient:
        if self._client is None:
            if self.credentials is None:
                raise RuntimeError("no credentials yet: the login handler has not run")
            self._client = KubeClient(self.credentials, field_manager=FIELD_MANAGER)
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
        if self._client is not None:
            await self._client.close()
            self._client = None

    def forget(self, key: Key) -> None:
        task = self.pending.pop(key, None)
        if task is not None:
            task.cancel()
        self.problems.pop(key, None)
        self.written.pop(key, None)
        self.locks.pop(key, None)
        self.metrics.forget(*key)

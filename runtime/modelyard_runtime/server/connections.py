"""Connection rebalancing: which kept-alive HTTP connections to end, and when (design §4).

kube-proxy balances connections, not requests, so a client that keeps its connections alive
never reaches a pod that appeared after it connected: a canary or a scaled-out replica would see
none of its traffic. Every HTTP connection therefore gets an age limit, ``max_age`` less up to
10 % (so connections opened together do not all end together). ``ConnectionAges.sweep`` marks
those past it, given the open connections and the time; the REST middleware answers the next
request on a marked connection with ``Connection: close``, and the client reconnects through the
Service. gRPC does the same with its own max connection age (GOAWAY, ``server.grpc_v2``).
Pure: the caller passes the connections and the clock; nothing here does I/O.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable
from typing import Final

JITTER: Final = 0.1  # each connection's limit is max_age x (1 - JITTER x uniform[0, 1))
MAX_SWEEP_PERIOD: Final = 1.0


class ConnectionAges:
    """Tracks when each open connection reaches its age limit; 0 = never."""

    def __init__(self, max_age: float, *, seed: int | None = None) -> None:
        self.max_age = max_age
        self.expired: frozenset[Hashable] = frozenset()
        self._ends: dict[Hashable, float] = {}
        self._random = random.Random(seed)  # noqa: S311 - spreading deadlines, not secrets

    @property
    def period(self) -> float:
        """How often to sweep: a tenth of the age, at most a second."""
        return min(MAX_SWEEP_PERIOD, self.max_age / 10)

    def sweep(self, connections: Iterable[Hashable], now: float) -> None:
        """Note new connections, forget closed ones, and mark those past their age."""
        if self.max_age <= 0:
            return
        previous, ends = self._ends, {}
        for connection in connections:
            end = previous.get(connection)
            if end is None:
                end = now + self.max_age * (1 - JITTER * self._random.random())
            ends[connection] = end
        self._ends = ends
        self.expired = frozenset(c for c, end in ends.items() if end <= now)

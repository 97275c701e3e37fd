"""Connection rebalancing: which kept-alive HTTP connections to end, and when (design §4).

kube-proxy balances connections, not requests, so a client that keeps its connections alive
never reaches a pod that appeared after it connected: a canary or a scaled-out replica would see
none of its traffic. Every HTTP connection therefore gets an age limit, ``max_age`` less up to
10 % (so connections opened together do not all end together). ``ConnectionAges.sweep`` marks
those past it, given the open connections and the time; the REST middleware answers the next
request on a marked connection with ``Connection: close``, and the client reconnects through the
Service. gRPC does the same with its own max connection age (GOAWAY, ``server.grpc_v2``).

Within a pod of several server processes the kernel spreads connections by a hash, so 8
connections can split 6 and 2. ``excess`` says how many a process holds above its share; the
sweep marks that many of its youngest connections too, and they reconnect, to land by a new hash.
Pure: the caller passes the connections, the counts and the clock; nothing here does I/O.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Sequence
from typing import Final

JITTER: Final = 0.1  # each connection's limit is max_age x (1 - JITTER x uniform[0, 1))
MAX_SWEEP_PERIOD: Final = 1.0
GROUP_SWEEP_PERIOD: Final = 0.25  # with siblings: how soon an uneven split is evened out


def excess(mine: int, siblings: Sequence[int]) -> int:
    """How many of its connections a process holds above an even share (rounded up)."""
    total = mine + sum(siblings)
    share = -(-total // (len(siblings) + 1))
    return max(0, mine - share)


class ConnectionAges:
    """Tracks when each open connection reaches its age limit; 0 = never."""

    def __init__(self, max_age: float, *, seed: int | None = None) -> None:
        self.max_age = max_age
        self.expired: frozenset[Hashable] = frozenset()
        self._ends: dict[Hashable, float] = {}
        self._shed: set[Hashable] = set()  # marked to even out the split, until they close
        self._random = random.Random(seed)  # noqa: S311 - spreading deadlines, not secrets

    @property
    def period(self) -> float:
        """How often to sweep: a tenth of the age, at most a second."""
        if self.max_age <= 0:
            return MAX_SWEEP_PERIOD
        return min(MAX_SWEEP_PERIOD, self.max_age / 10)

    def sweep(self, connections: Iterable[Hashable], now: float, *, shed: int = 0) -> None:
        """Note new connections, forget closed ones, mark those past their age, and, unless
        some marked before are still open, mark the ``shed`` youngest others as well."""
        previous, ends = self._ends, {}
        lifetime = self.max_age if self.max_age > 0 else float("inf")
        for connection in connections:
            end = previous.get(connection)
            if end is None:
                end = now + lifetime * (1 - JITTER * self._random.random())
            ends[connection] = end
        self._ends = ends
        aged = {c for c, end in ends.items() if end <= now}
        self._shed &= ends.keys()
        if shed > 0 and not self._shed:
            youngest = sorted((c for c in ends if c not in aged), key=ends.__getitem__)
            self._shed = set(youngest[-shed:])
        self.expired = frozenset(aged | self._shed)

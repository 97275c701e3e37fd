"""When to run a batch and which queued requests go into it. Pure: no clock, no I/O.

The scheduler calls ``wait_seconds`` when an executor slot is free and ``select`` to pick the
batch. Semantics follow Triton's dynamic batcher: a batch runs at once when it is full; otherwise
it waits until the oldest request has waited ``max_delay`` (0 = never wait). While every slot is
busy, requests accumulate, so the batch grows with the load without any configured delay.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol


class Pending(Protocol):
    @property
    def rows(self) -> int: ...

    @property
    def signature(self) -> Hashable:
        """Requests with equal signatures can be stacked into one batch."""
        ...

    @property
    def enqueued(self) -> float: ...


def ready_rows(queue: Sequence[Pending], max_rows: int) -> int:
    """Rows the head's batch would hold if it ran now."""
    return sum(queue[i].rows for i in select(queue, max_rows))


def wait_seconds(queue: Sequence[Pending], *, now: float, max_rows: int, max_delay: float) -> float:
    """How long to wait before running the head's batch; 0 = run now."""
    if not queue or max_delay <= 0:
        return 0.0
    if ready_rows(queue, max_rows) >= max_rows:
        return 0.0
    return max(0.0, queue[0].enqueued + max_delay - now)


def select(queue: Sequence[Pending], max_rows: int) -> list[int]:
    """Indices of the head's batch: the head, then FIFO requests of the same signature that fit.

    A request larger than ``max_rows`` runs alone; a request that does not fit is skipped, so a
    later smaller one may still join (it keeps its place for the next batch).
    """
    if not queue:
        return []
    head = queue[0]
    chosen, rows = [0], head.rows
    if head.signature is None:  # not batchable: always alone
        return chosen
    for i in range(1, len(queue)):
        if rows >= max_rows:
            break
        item = queue[i]
        if item.signature == head.signature and rows + item.rows <= max_rows:
            chosen.append(i)
            rows += item.rows
    return chosen

"""When to run a batch and which queued requests go into it. Pure: no clock, no I/O.

The scheduler calls ``wait_seconds`` when an executor slot is free and ``select`` to pick the
batch. Semantics follow Triton's dynamic batcher: a batch runs at once when it is full; otherwise
it waits until the oldest request has waited ``max_delay`` (0 = never wait). While every slot is
busy, requests accumulate, so the batch grows with the load without any configured delay.

``merge_wait`` adds one thing for models whose batches take milliseconds: the clients the last
batch answered usually send their next request at once (closed loop), and it reaches the queue a
fraction of that batch's compute time later. Starting the next batch without them splits the
clients into groups that take turns (two batches of 16 instead of one of 32, each as slow as the
whole), so the next batch waits for them, briefly and only while such waits pay off.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Final, Protocol

MERGE_MIN_SECONDS: Final = 0.001  # below this compute time a batch never waits to merge
MERGE_SHARE: Final = 0.25  # of the last batch's compute time, the longest wait to merge
MERGE_MAX_SECONDS: Final = 0.025


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


def merge_wait(
    *,
    rows: int,
    max_rows: int,
    queued: int,
    last_rows: int,
    last_seconds: float,
    last_merged: bool,
) -> tuple[int, float]:
    """(rows to wait for, longest wait) before running a batch of ``rows``, the last batch having
    had ``last_rows`` and taken ``last_seconds``, with ``queued`` rows (other clients') already
    waiting when it ended; (rows, 0) = run now.

    The last batch's clients come back after it: wait until ``queued + last_rows`` rows are here,
    at most a ``MERGE_SHARE`` of its compute time. ``last_merged`` says whether the previous wait
    brought at least half of them; after one that did not, the next batch runs at once (so
    traffic that does not come back, open-loop or sparse, waits on at most every other batch).
    """
    target = min(max_rows, queued + last_rows)
    if rows >= target or not last_merged or last_seconds < MERGE_MIN_SECONDS:
        return rows, 0.0
    return target, min(MERGE_SHARE * last_seconds, MERGE_MAX_SECONDS)


def merged(*, queued: int, rows: int, last_rows: int) -> bool:
    """Whether a merge wait paid off: at least half of the last batch's rows came back."""
    return 2 * (rows - queued) >= last_rows

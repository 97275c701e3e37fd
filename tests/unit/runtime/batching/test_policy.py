"""The pure batching policy: which requests form a batch and how long to wait."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

from modelyard_runtime.batching import policy


@dataclasses.dataclass(frozen=True)
class P:
    rows: int
    signature: Hashable = "a"
    enqueued: float = 0.0


def test_takes_fifo_requests_of_the_head_signature_up_to_max_rows() -> None:
    queue = [P(2), P(3, "b"), P(2), P(4), P(1)]
    assert policy.select(queue, max_rows=5) == [0, 2, 4]


def test_oversized_head_runs_alone() -> None:
    assert policy.select([P(10), P(1)], max_rows=4) == [0]


def test_unbatchable_head_runs_alone() -> None:
    assert policy.select([P(1, None), P(1, None)], max_rows=8) == [0]


def test_empty_queue_selects_nothing() -> None:
    assert policy.select([], max_rows=8) == []


def test_no_delay_means_run_now() -> None:
    assert policy.wait_seconds([P(1)], now=5.0, max_rows=8, max_delay=0.0) == 0.0


def test_waits_until_the_oldest_request_reaches_the_delay() -> None:
    queue = [P(1, enqueued=10.0), P(1, enqueued=10.5)]
    assert policy.wait_seconds(queue, now=10.25, max_rows=8, max_delay=1.0) == 0.75
    assert policy.wait_seconds(queue, now=11.5, max_rows=8, max_delay=1.0) == 0.0


def test_full_batch_runs_without_waiting() -> None:
    queue = [P(4, enqueued=10.0), P(4, enqueued=10.0)]
    assert policy.wait_seconds(queue, now=10.0, max_rows=8, max_delay=5.0) == 0.0

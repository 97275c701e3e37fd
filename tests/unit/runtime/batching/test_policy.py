"""The pure batching policy: which requests form a batch and how long to wait."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

import pytest

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


def test_a_slow_batch_waits_for_its_clients_to_come_back() -> None:
    # 16 rows of other clients were waiting when the last batch (16 rows, 40 ms) ended.
    target, wait = policy.merge_wait(
        rows=16, max_rows=64, queued=16, last_rows=16, last_seconds=0.040, last_merged=True
    )
    assert (target, wait) == (32, 0.010)  # a quarter of the last batch's compute time
    capped = policy.merge_wait(
        rows=60, max_rows=64, queued=60, last_rows=16, last_seconds=1.0, last_merged=True
    )
    assert capped == (64, policy.MERGE_MAX_SECONDS)


@pytest.mark.parametrize(
    ("rows", "queued", "last_seconds", "last_merged"),
    [
        (1, 0, 0.0005, True),  # quick model
        (64, 0, 0.05, True),  # already full
        (4, 0, 0.05, False),  # the last wait did not pay
        (1, 0, 0.05, True),  # one client, back already: nothing more will come
        (9, 1, 0.05, True),  # everyone who was answered is back
    ],
)
def test_no_merge_wait(rows: int, queued: int, last_seconds: float, last_merged: bool) -> None:
    assert policy.merge_wait(
        rows=rows,
        max_rows=64,
        queued=queued,
        last_rows=min(rows, 8),
        last_seconds=last_seconds,
        last_merged=last_merged,
    ) == (rows, 0.0)


def test_a_merge_wait_pays_when_half_the_last_batch_came_back() -> None:
    assert policy.merged(queued=16, rows=24, last_rows=16)
    assert not policy.merged(queued=16, rows=23, last_rows=16)

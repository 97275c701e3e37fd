"""The batcher merges concurrent requests, bounds its queue, times out and drains."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping

import numpy as np
import pytest

from modelyard_runtime.batching.scheduler import Batcher, BatchingConfig
from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.errors import InferenceFailedError, QueueFullError, RequestTimeoutError
from modelyard_runtime.session.fake import FakeSession
from tests.support.asyncwait import eventually

X = TensorSpec("x", "FP32", (-1, -1))
Y = TensorSpec("y", "FP32", (-1, -1))


class NullObserver:
    def dequeued(self, waited_seconds: float) -> None:
        pass

    def batch_done(self, rows: int, compute_seconds: float) -> None:
        pass


class Gate:
    """Holds the first batch inside the session until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def __call__(self, feeds: Mapping[str, Array]) -> list[Array]:
        self.entered.set()
        assert self.release.wait(10), "test never released the gate"
        if self.fail:
            raise RuntimeError("boom")
        return [feeds["x"] * 2]


def config(**overrides: float) -> BatchingConfig:
    values: dict[str, float] = {
        "max_batch_size": 8, "max_queue_delay_s": 0.0, "max_queue_size": 16, "workers": 1,
        **overrides,
    }  # fmt: skip
    return BatchingConfig(
        max_batch_size=int(values["max_batch_size"]),
        max_queue_delay_s=values["max_queue_delay_s"],
        max_queue_size=int(values["max_queue_size"]),
        workers=int(values["workers"]),
    )


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def session(gate: Gate) -> FakeSession:
    return FakeSession(gate, inputs=[X], outputs=[Y])


async def start(session: FakeSession, cfg: BatchingConfig) -> Batcher:
    batcher = Batcher(session, config=cfg, observer=NullObserver())
    batcher.start()
    return batcher


@pytest.fixture
async def batcher(session: FakeSession) -> AsyncIterator[Batcher]:
    b = await start(session, config())
    yield b
    await b.close()


def rows(value: float, n: int = 1, width: int = 3) -> dict[str, Array]:
    return {"x": np.full((n, width), value, dtype=np.float32)}


async def hold_first_batch(batcher: Batcher, gate: Gate) -> asyncio.Task[list[Array]]:
    first = asyncio.ensure_future(batcher.submit(rows(0), timeout=None))
    assert await asyncio.to_thread(gate.entered.wait, 5)
    return first


async def test_requests_queued_behind_a_running_batch_run_as_one_batch(
    batcher: Batcher, session: FakeSession, gate: Gate
) -> None:
    first = await hold_first_batch(batcher, gate)
    waiting = [asyncio.ensure_future(batcher.submit(rows(i, n=i), timeout=None)) for i in (1, 2, 3)]
    await eventually(lambda: batcher.queued == 3, what="3 queued requests")
    gate.release.set()
    results = await asyncio.gather(first, *waiting)
    assert session.batch_sizes == [1, 6]
    for i, (output,) in zip((1, 2, 3), results[1:], strict=True):
        assert output.shape == (i, 3)
        assert np.all(output == 2 * i)


async def test_max_batch_size_bounds_each_batch(session: FakeSession, gate: Gate) -> None:
    batcher = await start(session, config(max_batch_size=2))
    try:
        first = await hold_first_batch(batcher, gate)
        waiting = [asyncio.ensure_future(batcher.submit(rows(i), timeout=None)) for i in range(5)]
        await eventually(lambda: batcher.queued == 5)
        gate.release.set()
        await asyncio.gather(first, *waiting)
        assert session.batch_sizes == [1, 2, 2, 1]
    finally:
        await batcher.close()


async def test_incompatible_shapes_are_not_merged(
    batcher: Batcher, session: FakeSession, gate: Gate
) -> None:
    first = await hold_first_batch(batcher, gate)
    narrow = asyncio.ensure_future(batcher.submit(rows(1, width=3), timeout=None))
    wide = asyncio.ensure_future(batcher.submit(rows(2, width=5), timeout=None))
    narrow2 = asyncio.ensure_future(batcher.submit(rows(3, width=3), timeout=None))
    await eventually(lambda: batcher.queued == 3)
    gate.release.set()
    results = await asyncio.gather(first, narrow, wide, narrow2)
    assert session.batch_sizes == [1, 2, 1]
    assert results[2][0].shape == (1, 5)


async def test_full_queue_rejects_with_queue_full(session: FakeSession, gate: Gate) -> None:
    batcher = await start(session, config(max_queue_size=2))
    try:
        first = await hold_first_batch(batcher, gate)
        queued = [asyncio.ensure_future(batcher.submit(rows(i), timeout=None)) for i in range(2)]
        await eventually(lambda: batcher.queued == 2)
        with pytest.raises(QueueFullError, match="limit"):
            await batcher.submit(rows(9), timeout=None)
        gate.release.set()
        await asyncio.gather(first, *queued)
    finally:
        await batcher.close()


async def test_request_past_its_deadline_times_out_and_is_never_run(
    batcher: Batcher, session: FakeSession, gate: Gate
) -> None:
    first = await hold_first_batch(batcher, gate)
    with pytest.raises(RequestTimeoutError, match="timeout"):
        await batcher.submit(rows(1, n=5), timeout=0.05)
    gate.release.set()
    await first
    after = await batcher.submit(rows(2, n=2), timeout=None)
    assert after[0].shape == (2, 3)
    assert session.batch_sizes == [1, 2]


async def test_session_error_fails_every_request_of_the_batch(batcher: Batcher, gate: Gate) -> None:
    gate.fail = True
    first = await hold_first_batch(batcher, gate)
    other = asyncio.ensure_future(batcher.submit(rows(1), timeout=None))
    await eventually(lambda: batcher.queued == 1)
    gate.release.set()
    for task in (first, other):
        with pytest.raises(InferenceFailedError, match="boom"):
            await task


async def test_drain_waits_for_queued_and_running_requests(batcher: Batcher, gate: Gate) -> None:
    first = await hold_first_batch(batcher, gate)
    queued = asyncio.ensure_future(batcher.submit(rows(1), timeout=None))
    await eventually(lambda: batcher.queued == 1)
    assert not await batcher.drain(0.05)
    gate.release.set()
    assert await batcher.drain(5)
    assert first.done()
    assert queued.done()


async def test_a_full_batch_does_not_wait_for_the_queue_delay(
    session: FakeSession, gate: Gate
) -> None:
    gate.release.set()
    batcher = await start(session, config(max_batch_size=2, max_queue_delay_s=30.0))
    try:
        both = asyncio.gather(
            batcher.submit(rows(1), timeout=None), batcher.submit(rows(2), timeout=None)
        )
        await asyncio.wait_for(both, 5)
        assert session.batch_sizes == [2]
    finally:
        await batcher.close()


async def test_unbatchable_model_runs_requests_one_at_a_time(gate: Gate) -> None:
    fixed = TensorSpec("x", "FP32", (1, 3))
    session = FakeSession(gate, inputs=[fixed], outputs=[fixed])
    batcher = await start(session, config())
    try:
        first = await hold_first_batch(batcher, gate)
        others = [asyncio.ensure_future(batcher.submit(rows(i), timeout=None)) for i in (1, 2)]
        await eventually(lambda: batcher.queued == 2)
        gate.release.set()
        await asyncio.gather(first, *others)
        assert session.batch_sizes == [1, 1, 1]
    finally:
        await batcher.close()


class Recorder:
    """A session function that records the thread each batch ran on, optionally slow."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.threads: list[str] = []

    def __call__(self, feeds: Mapping[str, Array]) -> list[Array]:
        self.threads.append(threading.current_thread().name)
        if self.seconds:
            threading.Event().wait(self.seconds)  # a model this slow
        return [feeds["x"] * 2]


def row(value: float) -> dict[str, Array]:
    return {"x": np.full((1, 2), value, dtype=np.float32)}


async def test_quick_model_is_batched_on_the_event_loop() -> None:
    record = Recorder()
    session = FakeSession(record, inputs=[X], outputs=[Y])
    b = await start(session, config())
    try:
        await b.submit(row(0), timeout=5)  # measured on a worker: quick
        outputs = await asyncio.gather(*(b.submit(row(i), timeout=5) for i in (1, 2, 3)))
    finally:
        await b.close()
    assert record.threads == ["inference-0", threading.current_thread().name]
    assert session.batch_sizes == [1, 3]
    for value, (output,) in zip((1, 2, 3), outputs, strict=True):
        np.testing.assert_array_equal(output, np.full((1, 2), value * 2, dtype=np.float32))


async def test_a_request_larger_than_a_batch_never_runs_on_the_event_loop() -> None:
    record = Recorder()
    session = FakeSession(record, inputs=[X], outputs=[Y])
    b = await start(session, config(max_batch_size=4))
    try:
        await b.submit(row(0), timeout=5)  # measured on a worker: quick, so small ones go inline
        await b.submit(row(1), timeout=5)
        huge: dict[str, Array] = {"x": np.ones((5, 2), dtype=np.float32)}
        (output,) = await b.submit(huge, timeout=5)
    finally:
        await b.close()
    assert record.threads == ["inference-0", threading.current_thread().name, "inference-0"]
    np.testing.assert_array_equal(output, np.full((5, 2), 2, dtype=np.float32))


@pytest.mark.parametrize(
    ("seconds", "delay"),
    [(0.005, 0.0), (0.0, 0.001)],
    ids=["slow-model", "queue-delay-set"],
)
async def test_batches_stay_on_the_worker_thread(seconds: float, delay: float) -> None:
    record = Recorder(seconds=seconds)
    session = FakeSession(record, inputs=[X], outputs=[Y])
    b = await start(session, config(max_queue_delay_s=delay))
    try:
        for i in range(3):
            await b.submit(row(i), timeout=5)
    finally:
        await b.close()
    assert record.threads == ["inference-0"] * 3


@pytest.mark.parametrize("clients", [8, 12])
async def test_closed_loop_clients_of_a_slow_model_stay_in_one_batch(clients: int) -> None:
    held = threading.Event()  # holds the first client's batch until the others have queued
    calls: list[int] = []

    def slow(feeds: Mapping[str, Array]) -> list[Array]:
        calls.append(len(feeds["x"]))
        if len(calls) == 2:
            assert held.wait(10)
        threading.Event().wait(0.01)  # a model this slow
        return [feeds["x"] * 2]

    session = FakeSession(slow, inputs=[X], outputs=[Y])
    b = await start(session, config(max_batch_size=16, max_queue_size=64))

    async def client(value: float) -> None:
        for _ in range(6):  # each sends its next request as soon as it has its answer
            await b.submit(row(value), timeout=5)

    try:
        await b.submit(row(0), timeout=5)  # the batcher has seen one slow batch
        first = asyncio.ensure_future(client(0))
        await eventually(lambda: len(calls) == 2, what="the first client's batch")
        others = [asyncio.ensure_future(client(i)) for i in range(1, clients)]
        await eventually(lambda: b.queued == clients - 1, what="the others queued")
        held.set()
        await asyncio.gather(first, *others)
    finally:
        held.set()
        await b.close()
    # The first client's request ran alone and the others queued behind it. Then, instead of
    # two groups taking turns (1, n-1, 1, n-1, ...), the next batch waited for the first
    # client to come back, and every batch held every client.
    assert session.batch_sizes[1] == 1
    assert session.batch_sizes[2:7] == [clients] * 5

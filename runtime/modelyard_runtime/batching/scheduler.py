"""The asyncio side of dynamic batching: a bounded queue, one loop task, an executor.

``Batcher.submit`` queues a request's feeds and awaits its share of a batch's outputs. The loop
takes a batch whenever an executor slot is free (``policy`` decides how long to wait and which
requests fit), stacks the feeds, runs the session in a thread and hands each request its rows as
zero-copy views. Called by the REST (and gRPC) handlers; never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Hashable
from typing import Protocol

import numpy as np

from modelyard_runtime.batching import policy
from modelyard_runtime.datatypes import Array
from modelyard_runtime.errors import (
    InferenceFailedError,
    QueueFullError,
    RequestTimeoutError,
    RuntimeServiceError,
)
from modelyard_runtime.session import ModelSession

log = logging.getLogger(__name__)


class BatchObserver(Protocol):
    """Where the batcher reports what it does (the metrics module implements it)."""

    def queue_depth(self, depth: int) -> None: ...

    def dequeued(self, waited_seconds: float) -> None: ...

    def batch_done(self, rows: int, compute_seconds: float) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchingConfig:
    max_batch_size: int
    max_queue_delay_s: float
    max_queue_size: int
    workers: int


@dataclasses.dataclass(slots=True, eq=False)
class _Entry:
    feeds: dict[str, Array]
    rows: int
    signature: Hashable
    enqueued: float
    future: asyncio.Future[list[Array]]


def _expire(future: asyncio.Future[list[Array]], timeout: float) -> None:
    if not future.done():
        future.set_exception(RequestTimeoutError(f"no result within the {timeout:g} s timeout"))


class Batcher:
    """Merges concurrent requests into batches for one ``ModelSession``."""

    def __init__(
        self,
        session: ModelSession,
        *,
        config: BatchingConfig,
        observer: BatchObserver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._config = config
        self._observer = observer
        self._clock = clock
        self._batchable = all(spec.batchable for spec in (*session.inputs, *session.outputs))
        self._queue: list[_Entry] = []
        self._arrival = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._slots = asyncio.Semaphore(config.workers)
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.workers, thread_name_prefix="inference"
        )
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _signature(self, feeds: dict[str, Array]) -> tuple[Hashable, int]:
        if not self._batchable:
            return None, 1
        rows = {array.shape[0] for array in feeds.values()}
        if len(rows) != 1:
            return None, 1
        signature = tuple((name, a.dtype.str, a.shape[1:]) for name, a in sorted(feeds.items()))
        return signature, rows.pop()

    async def submit(self, feeds: dict[str, Array], *, timeout: float | None) -> list[Array]:
        """Queue ``feeds``; return this request's outputs (rows of the batch's outputs)."""
        if len(self._queue) >= self._config.max_queue_size:
            raise QueueFullError(
                f"the queue holds {len(self._queue)} requests, its limit; retry shortly"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Array]] = loop.create_future()
        signature, rows = self._signature(feeds)
        self._queue.append(_Entry(feeds, rows, signature, self._clock(), future))
        self._observer.queue_depth(len(self._queue))
        self._arrival.set()
        self._idle.clear()
        handle = loop.call_later(timeout, _expire, future, timeout) if timeout else None
        try:
            return await future
        finally:
            if handle is not None:
                handle.cancel()
            if not self._running:
                self._update_idle()

    def _update_idle(self) -> None:
        live = any(not entry.future.done() for entry in self._queue)
        if self._running or live:
            self._idle.clear()
        else:
            self._idle.set()

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            batch = await self._next_batch()
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _next_batch(self) -> list[_Entry]:
        config = self._config
        while True:
            if any(entry.future.done() for entry in self._queue):
                self._queue = [entry for entry in self._queue if not entry.future.done()]
            if not self._queue:
                self._arrival.clear()
                await self._arrival.wait()
                continue
            delay = policy.wait_seconds(
                self._queue,
                now=self._clock(),
                max_rows=config.max_batch_size,
                max_delay=config.max_queue_delay_s,
            )
            if delay <= 0:
                break
            self._arrival.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrival.wait(), delay)
        chosen = policy.select(self._queue, config.max_batch_size)
        if chosen[-1] == len(chosen) - 1:  # a prefix: the usual case
            batch = self._queue[: len(chosen)]
            del self._queue[: len(chosen)]
        else:
            picked = set(chosen)
            batch = [self._queue[i] for i in chosen]
            self._queue = [e for i, e in enumerate(self._queue) if i not in picked]
        now = self._clock()
        for entry in batch:
            self._observer.dequeued(now - entry.enqueued)
        self._observer.queue_depth(len(self._queue))
        return batch

    def _compute(self, batch: list[_Entry]) -> list[Array]:
        if len(batch) == 1:
            feeds = batch[0].feeds
        else:
            feeds = {
                name: np.concatenate([entry.feeds[name] for entry in batch])
                for name in batch[0].feeds
            }
        started = time.perf_counter()
        outputs = self._session.run(feeds)
        self._observer.batch_done(sum(e.rows for e in batch), time.perf_counter() - started)
        return outputs

    async def _run(self, batch: list[_Entry]) -> None:
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._executor, self._compute, batch)
        except Exception as e:
            log.exception("inference failed for a batch of %d requests", len(batch))
            error: RuntimeServiceError = InferenceFailedError(f"inference failed: {e}")
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(error)
        else:
            self._hand_out(batch, outputs)
        finally:
            self._running -= 1
            self._slots.release()
            self._update_idle()

    @staticmethod
    def _hand_out(batch: list[_Entry], outputs: list[Array]) -> None:
        if len(batch) == 1:
            if not batch[0].future.done():
                batch[0].future.set_result(outputs)
            return
        offset = 0
        for entry in batch:
            end = offset + entry.rows
            if not entry.future.done():
                entry.future.set_result([output[offset:end] for output in outputs])
            offset = end

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued and running request is done; False if ``timeout`` passed."""
        self._update_idle()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for entry in self._queue:
            if not entry.future.done():
                entry.future.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)

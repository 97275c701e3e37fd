"""Dynamic batching: a bounded queue shared with inference worker threads.

``Batcher.submit`` (on the event loop) queues a request's feeds and awaits its share of a batch's
outputs. Each worker thread takes its own batches from the queue (``policy`` decides how long to
wait and which requests fit), stacks the feeds, runs the session, and posts each request its rows
(zero-copy views) back to the loop with ``call_soon_threadsafe``. Workers never wait for the event
loop to schedule them, so a busy loop (parsing requests, writing responses) cannot leave the
session idle.
Called by the REST and gRPC handlers; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
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
    """Where the batcher reports what it does (the metrics module implements it; thread-safe)."""

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
    abandoned: bool = False  # set on the loop when the caller stopped waiting


def _expire(future: asyncio.Future[list[Array]], timeout: float) -> None:
    if not future.done():
        future.set_exception(RequestTimeoutError(f"no result within the {timeout:g} s timeout"))


def _hand_out(
    batch: list[_Entry], outputs: list[Array] | None, error: RuntimeServiceError | None
) -> None:
    """On the event loop: give each request its rows of the batch's outputs (or the error)."""
    offset = 0
    for entry in batch:
        end = offset + entry.rows
        if not entry.future.done():
            if outputs is None:
                entry.future.set_exception(error or InferenceFailedError("inference failed"))
            elif len(batch) == 1:
                entry.future.set_result(outputs)
            else:
                entry.future.set_result([output[offset:end] for output in outputs])
        offset = end


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
        self._changed = threading.Condition()
        self._queue: list[_Entry] = []  # guarded by _changed
        self._closed = False  # guarded by _changed
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0  # event-loop side: submitted and not yet answered
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for index in range(self._config.workers):
            thread = threading.Thread(target=self._work, name=f"inference-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def queued(self) -> int:
        with self._changed:
            return sum(not entry.abandoned for entry in self._queue)

    def _signature(self, feeds: dict[str, Array]) -> tuple[Hashable, int]:
        """Requests with equal signatures (names, dtypes, non-batch dims) can be stacked."""
        if not self._batchable:
            return None, 1
        parts: list[tuple[str, str, tuple[int, ...]]] = []
        rows = -1
        for name, array in feeds.items():
            if rows not in (-1, array.shape[0]):
                return None, 1
            rows = array.shape[0]
            parts.append((name, array.dtype.str, array.shape[1:]))
        if len(parts) > 1:
            parts.sort()
        return tuple(parts), rows

    async def submit(self, feeds: dict[str, Array], *, timeout: float | None) -> list[Array]:
        """Queue ``feeds``; return this request's outputs (rows of the batch's outputs)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Array]] = loop.create_future()
        signature, rows = self._signature(feeds)
        entry = _Entry(feeds, rows, signature, self._clock(), future)
        with self._changed:
            depth = len(self._queue)
            if depth >= self._config.max_queue_size:
                raise QueueFullError(f"the queue holds {depth} requests, its limit; retry shortly")
            self._queue.append(entry)
            self._changed.notify()
        self._pending += 1
        self._idle.clear()
        handle = loop.call_later(timeout, _expire, future, timeout) if timeout else None
        try:
            return await future
        finally:
            entry.abandoned = True
            if handle is not None:
                handle.cancel()
            self._pending -= 1
            if not self._pending:
                self._idle.set()

    def _work(self) -> None:
        """A worker thread: take a batch, run it, post the results; until closed."""
        while (batch := self._take()) is not None:
            outputs, error = self._compute(batch)
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody waits
                self._loop.call_soon_threadsafe(_hand_out, batch, outputs, error)

    def _take(self) -> list[_Entry] | None:
        config = self._config
        with self._changed:
            while True:
                if self._closed:
                    return None
                if any(entry.abandoned for entry in self._queue):
                    self._queue = [entry for entry in self._queue if not entry.abandoned]
                if not self._queue:
                    self._changed.wait()
                    continue
                delay = policy.wait_seconds(
                    self._queue,
                    now=self._clock(),
                    max_rows=config.max_batch_size,
                    max_delay=config.max_queue_delay_s,
                )
                if delay <= 0:
                    break
                self._changed.wait(delay)
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
        return batch

    def _compute(
        self, batch: list[_Entry]
    ) -> tuple[list[Array] | None, RuntimeServiceError | None]:
        started = time.perf_counter()
        try:
            if len(batch) == 1:
                feeds = batch[0].feeds
            else:
                feeds = {
                    name: np.concatenate([entry.feeds[name] for entry in batch])
                    for name in batch[0].feeds
                }
            outputs = self._session.run(feeds)
        except Exception as e:
            log.exception("inference failed for a batch of %d requests", len(batch))
            return None, InferenceFailedError(f"inference failed: {e}")
        self._observer.batch_done(sum(entry.rows for entry in batch), time.perf_counter() - started)
        return outputs, None

    async def drain(self, timeout: float) -> bool:
        """Wait until every submitted request is answered; False if ``timeout`` passed."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        with self._changed:
            self._closed = True
            abandoned, self._queue = self._queue, []
            self._changed.notify_all()
        for entry in abandoned:
            if not entry.future.done():
                entry.future.cancel()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 30)

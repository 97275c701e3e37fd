"""Dynamic batching: a bounded queue shared with inference worker threads.

``Batcher.submit`` (on the event loop) puts a request's feeds on a ``queue.SimpleQueue`` (C, no
Python-level locking) and awaits its share of a batch's outputs. Each worker thread drains the
queue into the requests it holds and takes its own batches from them (``policy`` decides how long
to wait and which requests fit), stacks the feeds, runs the session, and posts each request its rows
(zero-copy views) back to the loop with ``call_soon_threadsafe``. Workers never wait for the event
loop to schedule them, so a busy loop (parsing requests, writing responses) cannot leave the
session idle. A model whose batches take well under a millisecond is the exception: there the
hand-off costs more than the inference, so its batches run on the loop (``INLINE_MAX_SECONDS``).
Called by the REST and gRPC handlers; nothing else here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol

import numpy as np

from modelyard_runtime.batching import policy
from modelyard_runtime.batching.entries import Entry, Worker, expire, hand_out
from modelyard_runtime.datatypes import Array
from modelyard_runtime.errors import (
    InferenceFailedError,
    QueueFullError,
    RuntimeServiceError,
)
from modelyard_runtime.session import ModelSession

log = logging.getLogger(__name__)

# While recent batches took at most this long (a moving average), requests are batched on the
# event loop instead: what arrived in one loop iteration runs as one batch right after it
# (``_flush_inline``). Overhead-bound model at concurrency 8, four interleaved 10 s runs:
# 3,000 req/s against 2,620 with the worker thread (BENCHMARKS.md).
INLINE_MAX_SECONDS = 0.0005


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
        self._inbox: queue.SimpleQueue[Entry | None] = queue.SimpleQueue()
        self._held: list[list[Entry]] = []  # per worker: drained from the inbox, not yet run
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0  # event-loop side: submitted and not yet answered
        self._inline: list[Entry] = []  # event-loop side: waiting for the end of this iteration
        self._flush_scheduled = False
        self._recent_seconds = math.inf  # compute time of recent batches (moving average)
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for index in range(self._config.workers):
            worker = Worker()
            self._held.append(worker.held)
            thread = threading.Thread(
                target=self._work, args=(worker,), name=f"inference-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    @property
    def queued(self) -> int:
        """Requests waiting for a batch (approximate while workers are taking them)."""
        held = sum(not entry.abandoned for entries in self._held for entry in list(entries))
        return self._inbox.qsize() + held + len(self._inline)

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
        depth = self._inbox.qsize() + sum(len(entries) for entries in self._held)
        depth += len(self._inline)
        if depth >= self._config.max_queue_size:
            raise QueueFullError(f"the queue holds {depth} requests, its limit; retry shortly")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Array]] = loop.create_future()
        signature, rows = self._signature(feeds)
        entry = Entry(feeds, rows, signature, self._clock(), future)
        if (
            self._recent_seconds <= INLINE_MAX_SECONDS
            and self._config.max_queue_delay_s <= 0
            and rows <= self._config.max_batch_size  # a huge request never runs on the loop
        ):
            self._inline.append(entry)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush_inline)
        else:
            self._inbox.put(entry)
        self._pending += 1
        self._idle.clear()
        handle = loop.call_later(timeout, expire, future, timeout) if timeout else None
        try:
            return await future
        finally:
            entry.abandoned = True
            if handle is not None:
                handle.cancel()
            self._pending -= 1
            if not self._pending:
                self._idle.set()

    def _flush_inline(self) -> None:
        """On the event loop, after the requests of this iteration were submitted: run them in
        batches here. For a model this quick a thread hand-off (two wake-ups, the GIL changing
        hands) costs more than the inference."""
        self._flush_scheduled = False
        pending = [entry for entry in self._inline if not entry.abandoned]
        self._inline.clear()
        while pending:
            batch = self._pop_batch(pending)
            outputs, error = self._compute(batch)
            hand_out(batch, outputs, error)

    def _work(self, worker: Worker) -> None:
        """A worker thread: take a batch, run it, post the results; until closed."""
        while (batch := self._take(worker)) is not None:
            started = time.perf_counter()
            outputs, error = self._compute(batch)
            worker.last_seconds = time.perf_counter() - started
            worker.last_rows = sum(entry.rows for entry in batch)
            # What others sent meanwhile, counted before this batch's clients can send again.
            worker.closing = not self._drain(worker.held, 0)
            worker.queued = sum(entry.rows for entry in worker.held if not entry.abandoned)
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody waits
                self._loop.call_soon_threadsafe(hand_out, batch, outputs, error)

    def _drain(self, held: list[Entry], timeout: float | None) -> bool:
        """Move requests from the inbox into ``held`` until it holds a full batch, waiting up to
        ``timeout`` for the first one (None: as long as it takes). False once closing.

        A worker never holds more than one batch, so another idle worker can take the rest.
        """
        rows = sum(entry.rows for entry in held)
        if rows >= self._config.max_batch_size:
            return True
        try:
            item = self._inbox.get(timeout=timeout) if timeout != 0 else self._inbox.get_nowait()
        except queue.Empty:
            return True
        while item is not None:
            held.append(item)
            rows += item.rows
            if rows >= self._config.max_batch_size:
                return True
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return True
        return False

    def _take(self, worker: Worker) -> list[Entry] | None:
        config, held = self._config, worker.held
        if worker.closing:
            return None
        while True:
            if not self._drain(held, 0 if held else None):
                return None
            held[:] = [entry for entry in held if not entry.abandoned]
            if not held:
                continue
            delay = policy.wait_seconds(
                held,
                now=self._clock(),
                max_rows=config.max_batch_size,
                max_delay=config.max_queue_delay_s,
            )
            if delay <= 0:
                break
            if not self._drain(held, delay):
                return None
        if not self._merge(worker, worker.queued):
            return None
        return self._pop_batch(held)

    def _merge(self, worker: Worker, queued: int) -> bool:
        """Wait (``policy.merge_wait``) for the clients of the last batch; False once closing."""
        held = worker.held
        rows = sum(entry.rows for entry in held)
        target, wait = policy.merge_wait(
            rows=rows,
            max_rows=self._config.max_batch_size,
            queued=queued,
            last_rows=worker.last_rows,
            last_seconds=worker.last_seconds,
            last_merged=worker.last_merged,
        )
        if wait <= 0:
            worker.last_merged = True
            return True
        deadline = time.perf_counter() + wait
        while rows < target and (left := deadline - time.perf_counter()) > 0:
            if not self._drain(held, left):
                return False
            rows = sum(entry.rows for entry in held)
        worker.last_merged = policy.merged(queued=queued, rows=rows, last_rows=worker.last_rows)
        return True

    def _pop_batch(self, entries: list[Entry]) -> list[Entry]:
        """Take the head's batch (``policy.select``) out of ``entries``; report its waits."""
        chosen = policy.select(entries, self._config.max_batch_size)
        if chosen[-1] == len(chosen) - 1:  # a prefix: the usual case
            batch = entries[: len(chosen)]
            del entries[: len(chosen)]
        else:
            picked = set(chosen)
            batch = [entries[i] for i in chosen]
            entries[:] = [e for i, e in enumerate(entries) if i not in picked]
        now = self._clock()
        for entry in batch:
            self._observer.dequeued(now - entry.enqueued)
        return batch

    def _compute(self, batch: list[Entry]) -> tuple[list[Array] | None, RuntimeServiceError | None]:
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
        elapsed = time.perf_counter() - started
        self._observer.batch_done(sum(entry.rows for entry in batch), elapsed)
        recent = self._recent_seconds  # one float, written by whichever thread ran the batch
        self._recent_seconds = elapsed if recent == math.inf else 0.8 * recent + 0.2 * elapsed
        return outputs, None

    async def drain(self, timeout: float) -> bool:
        """Wait until every submitted request is answered; False if ``timeout`` passed."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        for _ in self._threads:
            self._inbox.put(None)  # one stop sign per worker
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 30)
        leftovers = [entry for entries in self._held for entry in entries] + self._inline
        self._inline = []
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if item is not None:
                leftovers.append(item)
        for entry in leftovers:
            if not entry.future.done():
                entry.future.cancel()

"""One loop for every ModelDeployment that needs looking at later: rollouts waiting for a
pause, an analysis or a deadline, and debounced bursts of pod events.

``due(key, delay)`` keeps the earliest due time per key (a burst becomes one sync); the loop
runs due syncs as tasks, at most ``concurrency`` at once. A sync that fails is tried again
after a backoff. Not a kopf timer per object, which would keep a task and a body for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from modelyard_operator.k8s.errors import K8sError

log = logging.getLogger(__name__)
Key = tuple[str, str]
RETRY_DELAY: Final = 5.0  # seconds: a sync that failed against the API server
ERROR_DELAY: Final = 30.0  # seconds: a sync that failed unexpectedly


class Scheduler:
    def __init__(self, run: Callable[[Key], Awaitable[float | None]], *, concurrency: int) -> None:
        self._run = run
        self._due: dict[Key, float] = {}
        self._heap: list[tuple[float, Key]] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def due(self, key: Key, delay: float) -> None:
        """Sync ``key`` in ``delay`` seconds (sooner if it is already due sooner)."""
        at = asyncio.get_running_loop().time() + max(0.0, delay)
        if key in self._due and self._due[key] <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, key))
        self._wake.set()

    def cancel(self, key: Key) -> None:
        self._due.pop(key, None)

    def pending(self, key: Key) -> float | None:
        """When ``key`` is due (loop time), if it is."""
        return self._due.get(key)

    async def loop(self) -> None:
        clock = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # superseded by an earlier due time, or cancelled
            if not self._heap:
                await self._wake.wait()
                continue
            at, key = self._heap[0]
            wait = at - clock.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            heapq.heappop(self._heap)
            del self._due[key]
            await self._slots.acquire()
            task = asyncio.create_task(self._one(key), name=f"sync {key[0]}/{key[1]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _one(self, key: Key) -> None:
        try:
            requeue = await self._run(key)
        except K8sError as e:
            log.warning("sync of %s/%s failed, retrying in %.0f s: %s", *key, RETRY_DELAY, e)
            requeue = RETRY_DELAY
        except Exception:
            log.exception("sync of %s/%s failed, retrying in %.0f s", *key, ERROR_DELAY)
            requeue = ERROR_DELAY
        finally:
            self._slots.release()
        if requeue is not None:
            self.due(key, requeue)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

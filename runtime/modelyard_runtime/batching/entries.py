"""What the batcher keeps: a queued request (``Entry``), a worker thread's state (``Worker``),
and the two ways an entry's future is settled on the event loop (``hand_out``, ``expire``).

Used only by ``batching.scheduler``; no threads or queues of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Hashable

from modelyard_runtime.datatypes import Array
from modelyard_runtime.errors import InferenceFailedError, RequestTimeoutError, RuntimeServiceError


@dataclasses.dataclass(slots=True, eq=False)
class Worker:
    """One worker thread's state: what it drained from the inbox, and its last batch."""

    held: list[Entry] = dataclasses.field(default_factory=list)
    last_rows: int = 0
    last_seconds: float = 0.0
    last_merged: bool = True
    queued: int = 0  # rows other clients had queued when the last batch ended
    closing: bool = False  # the stop sign was taken from the inbox


@dataclasses.dataclass(slots=True, eq=False)
class Entry:
    feeds: dict[str, Array]
    rows: int
    signature: Hashable
    enqueued: float
    future: asyncio.Future[list[Array]]
    abandoned: bool = False  # set on the loop when the caller stopped waiting


def expire(future: asyncio.Future[list[Array]], timeout: float) -> None:
    if not future.done():
        future.set_exception(RequestTimeoutError(f"no result within the {timeout:g} s timeout"))


def hand_out(
    batch: list[Entry], outputs: list[Array] | None, error: RuntimeServiceError | None
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

"""Where a REST request body is decoded: on the event loop, in a thread, or in a child process.

A small body decodes on the loop (a hand-off would cost more than the decoding). A larger one
(``decode_thread_bytes``) goes to a thread, so the loop runs between its steps. But JSON parsing
(orjson) and building arrays from Python lists (numpy) hold the GIL for their whole call: 30 MB
of JSON numbers would stall the loop, and readiness with it, for seconds, and leave a GiB of
Python objects' memory behind. So a body of ``decode_process_bytes`` or more decodes in a child
process, a fresh interpreter with only the codecs (``server.decode_child``, ~0.3 s to start)
that exits after that one body: the server gets the arrays back, and neither the stall nor the
memory. After any large body the C heap is trimmed. Used by ``rest_v2`` and ``rest_v1``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import functools
import gc
import logging
import os
import pickle
import sys
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from modelyard_runtime.errors import UnavailableError
from modelyard_runtime.server import decode_child
from modelyard_runtime.settings import Settings

log = logging.getLogger(__name__)

DecodedT = TypeVar("DecodedT")

PROCESSES: Final = 2  # children (and threads) decoding at once
BULK_NICENESS: Final = 10  # of the threads and children that decode large bodies
TRIM_AFTER_SECONDS: Final = 1.0  # after a large body, when its request is likely answered


def _trim_heap() -> None:
    """Free what a large request left in reference cycles (an error's traceback holds its
    frames, and so the body and arrays, until the cycle collector runs: on a quiet server,
    much later), and give the C heap's free memory back to the system (glibc keeps it)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None on a C library without it (musl)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class HeapTrimmer:
    """After a large body, once its request is likely done, trims the heap in a thread."""

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None

    def after_large_body(self) -> None:
        """Trim a second from now (from the last call, when several come together)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = asyncio.get_running_loop().call_later(TRIM_AFTER_SECONDS, self._trim)

    def _trim(self) -> None:
        self._handle = None
        asyncio.get_running_loop().run_in_executor(None, _trim_heap)


def _lower_priority() -> None:
    """Make the calling thread yield the CPU to the event loop (Linux: niceness is per thread)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BULK_NICENESS)


class BodyDecoder:
    """Runs a decoder where the body's size says, and other bulk work on a large body (inflating
    it) in its low-priority threads; ``close`` ends them."""

    def __init__(self, settings: Settings) -> None:
        self._thread_bytes = settings.decode_thread_bytes
        self._process_bytes = settings.decode_process_bytes
        self._children = asyncio.Semaphore(PROCESSES)
        self._threads = concurrent.futures.ThreadPoolExecutor(
            PROCESSES, thread_name_prefix="decode", initializer=_lower_priority
        )
        self.trimmer = HeapTrimmer()

    async def in_thread(self, function: Callable[..., DecodedT], *args: Any) -> DecodedT:
        """``function(*args)`` in a low-priority thread: a large body's work never takes the
        event loop's CPU (readiness, small requests) on a busy machine."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(function, *args))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def decode(
        self,
        decoder: Callable[..., DecodedT],
        body: bytes,
        *args: Any,
        json_bytes: int | None = None,
    ) -> DecodedT:
        """``decoder(body, *args)`` on the loop, in a thread, or in a child process.

        ``json_bytes``: how much of the body is JSON (binary tensors decode without a copy and
        need no child process); None: all of it."""
        size = len(body)
        if size < self._thread_bytes:
            return decoder(body, *args)
        self.trimmer.after_large_body()
        json_size = size if json_bytes is None else json_bytes
        try:
            if not self._process_bytes or json_size < self._process_bytes:
                return await self.in_thread(decoder, body, *args)
            async with self._children:
                return await self._in_child(decoder, body, args)
        finally:
            self.trimmer.after_large_body()

    async def _in_child(
        self, decoder: Callable[..., DecodedT], body: bytes, args: tuple[Any, ...]
    ) -> DecodedT:
        """One fresh child process for one body (``server.decode_child``)."""
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", decode_child.__name__,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            # The child reads all of its input before it writes: no deadlock.
            child.stdin.writelines(decode_child.frame(decoder, args, body))
            await child.stdin.drain()
            child.stdin.close()
            output = await child.stdout.read()
            await child.wait()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise UnavailableError("the process decoding the request body died; retry") from e
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        if child.returncode != 0 or not output:
            raise UnavailableError(
                f"the process decoding the request body failed (exit {child.returncode}); retry"
            )
        ok, result = pickle.loads(output)  # noqa: S301 - from our own child process
        if not ok:
            raise result
        decoded: DecodedT = result
        return decoded

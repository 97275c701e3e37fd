"""The server's lifecycle: listen, load in a thread, Ready, and drain on SIGTERM.

``serve`` is called by the CLI and by tests (with a custom ``loader``). Liveness answers from the
first moment; readiness only after verify, load and warm-up. A fatal startup failure is written to
the termination log and ends the process non-zero. With more than one process (``sizing``) it
supervises that many copies of itself instead (``server.processes``).

SIGTERM starts the drain (``_drain``): readiness and gRPC health turn unready at once, so the
endpoints drop the pod; for ``drain_delay_seconds`` (at most the grace) it keeps accepting and
serving, answering HTTP with ``Connection: close`` so clients reconnect to other pods; then it
stops listening (gRPC: GOAWAY), finishes queued and in-flight requests, closes idle connections
and returns 0, all within ``shutdown_grace_seconds``. SIGINT (Ctrl-C) skips the delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.errors import SettingsError, StartupError
from modelyard_runtime.server.listeners import Listeners
from modelyard_runtime.server.processes import ProcessGroup, housekeep, supervise
from modelyard_runtime.settings import Settings
from modelyard_runtime.sizing import processes_for
from modelyard_runtime.startup import (
    Loader,
    listen_failed,
    load_onnx,
    prepare,
    report_fatal,
    write_termination_log,
)

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
EXIT_RESERVE_SECONDS = 2.0  # of the grace (at most a quarter), left for the process to exit


class Stop:
    """Set by the first stop signal; remembers which one."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: int | None = None

    def __call__(self, signum: int) -> None:
        if self.signal is None:
            self.signal = signum
        self.event.set()


def read_token(path: str) -> bytes | None:
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise SettingsError(f"cannot read the auth token file {path}: {e}") from e
    if not token:
        raise SettingsError(f"the auth token file {path} is empty")
    return token.encode()


async def serve(settings: Settings, *, loader: Loader = load_onnx) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code."""
    try:
        token = read_token(settings.auth_token_file)
    except SettingsError as e:
        report_fatal(settings.termination_log, "settings", str(e))
        return 2
    group = ProcessGroup.from_environ(os.environ)
    if group is None:
        count = processes_for(settings)
        if count > 1:
            return await supervise(settings, count)
    else:
        settings = group.settings_for(settings)
    plane = DataPlane.for_settings(
        settings,
        token=token,
        siblings=group,
        metrics_dir=group.directory if group is not None else None,
    )
    stop = Stop()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    keeper = None
    if group is not None:
        keeper = asyncio.ensure_future(housekeep(group, stop.event, plane.metrics.sample))
    listeners = Listeners(plane, group=group)
    try:
        try:
            await listeners.start()
        except (OSError, RuntimeError) as e:
            return listen_failed(settings, e)
        return await _load_and_serve(plane, stop, loader, listeners, group)
    finally:
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        await listeners.close()
        if plane.batcher is not None:
            await plane.batcher.close()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _load_and_serve(
    plane: DataPlane,
    stop: Stop,
    loader: Loader,
    listeners: Listeners,
    group: ProcessGroup | None,
) -> int:
    settings = plane.settings
    load = asyncio.ensure_future(asyncio.to_thread(prepare, settings, plane.metrics, loader=loader))
    stopped = asyncio.ensure_future(stop.event.wait())
    await asyncio.wait({load, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not load.done():
        log.info("stop requested while loading; exiting")
        stopped.cancel()
        return 0
    try:
        model = load.result()
    except StartupError as e:
        log.error("startup failed at stage %s: %s", e.stage, e.message)
        write_termination_log(settings.termination_log, str(e))
        stopped.cancel()
        return 1
    plane.attach(model)
    readiness = plane.readiness
    if settings.require_gpu and model.session.execution_provider == "cpu":
        readiness.not_ready_reason = (
            "a GPU is required (requireGPU) but the model runs on the CPU: "
            "no CUDA or TensorRT provider is active"
        )
        log.error("not ready: %s", readiness.not_ready_reason)
    else:
        readiness.not_ready_reason = ""
        if group is not None:
            group.mark_ready()
        log.info(
            "ready: model %r version %r on %s",
            settings.served_name,
            settings.model_version,
            model.session.execution_provider,
        )
        if await wait_group_ready(plane, stop.event):
            await listeners.set_serving(True)
    await stopped
    await listeners.set_serving(False)
    delay = 0.0 if stop.signal == signal.SIGINT else settings.drain_delay_seconds
    return await _drain(plane, listeners, delay)


async def wait_group_ready(plane: DataPlane, stop: asyncio.Event, period: float = 0.05) -> bool:
    """Wait until the whole process group is ready, so gRPC health agrees with HTTP readiness."""
    while plane.readiness_problem():
        if stop.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
    return True


async def _drain(plane: DataPlane, listeners: Listeners, delay: float) -> int:
    """Unready now; serve on for ``delay``; stop listening; finish the work; within the grace."""
    plane.readiness.draining = True
    grace = plane.settings.shutdown_grace_seconds
    # Exiting (the interpreter tearing down gRPC, onnxruntime) takes ~0.4 s after the drain: keep it
    # inside the grace too.
    drain = grace - min(EXIT_RESERVE_SECONDS, grace / 4)
    deadline = time.monotonic() + drain
    delay = min(delay, drain)
    log.info(
        "draining: %d requests in flight, grace %.1f s; accepting connections for %.1f s more",
        plane.in_flight,
        grace,
        delay,
    )
    if delay > 0:
        await asyncio.sleep(delay)
    await listeners.stop_accepting(grace=max(0.0, deadline - time.monotonic()))
    log.info("stopped accepting connections: %d requests in flight", plane.in_flight)
    if not await plane.drained(max(0.0, deadline - time.monotonic())):
        log.warning("grace period over with %d requests in flight", plane.in_flight)
    # What is left (a client stalled mid-body, an idle connection) ends within the grace too.
    await listeners.close(timeout=max(0.0, deadline - time.monotonic()))
    log.info("drained; exiting")
    return 0

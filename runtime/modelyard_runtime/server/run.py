"""The server's lifecycle: listen, load in a thread, Ready, and drain on SIGTERM.

``serve`` is called by the CLI and by tests (with a custom ``loader``). Liveness answers from the
first moment; readiness only after verify, load and warm-up. A fatal startup failure is written to
the termination log and ends the process non-zero. SIGTERM flips readiness at once, answers new
requests 503, lets queued and in-flight requests finish, and returns 0 within the grace period.
With ``processes`` above 1 it supervises that many copies of itself instead (``server.processes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from aiohttp import web

from modelyard_runtime.errors import SettingsError, StartupError
from modelyard_runtime.server.app import build_app
from modelyard_runtime.server.grpc_service import GrpcServer
from modelyard_runtime.server.processes import ProcessGroup, housekeep, supervise
from modelyard_runtime.server.state import ServerState
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import (
    Loader,
    listen_failed,
    load_onnx,
    prepare,
    report_fatal,
    write_termination_log,
)

log = logging.getLogger(__name__)


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
    if group is None and settings.processes > 1:
        return await supervise(settings)
    if group is not None:
        settings = group.settings_for(settings)
    state = ServerState.for_settings(settings, token=token, group=group)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    keeper = None
    if group is not None:
        keeper = asyncio.ensure_future(housekeep(group, stop, state.metrics.sample))
    runner = web.AppRunner(
        build_app(state),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=max(settings.shutdown_grace_seconds, 0.1),
    )
    await runner.setup()
    grpc_server: GrpcServer | None = None
    try:
        try:
            site = web.TCPSite(
                runner,
                settings.host,
                settings.http_port,
                backlog=1024,
                reuse_port=group is not None,
            )
            await site.start()
            grpc_server = GrpcServer(state)
        except (OSError, RuntimeError) as e:
            return listen_failed(settings, e)
        for address in runner.addresses:
            log.info("listening on http://%s:%d", address[0], address[1])
        await grpc_server.start()
        code = await _load_and_serve(state, stop, loader, grpc_server)
    finally:
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        if grpc_server is not None:
            await grpc_server.stop(grace=1.0)
        await runner.cleanup()
        if state.batcher is not None:
            await state.batcher.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return code


async def _load_and_serve(
    state: ServerState, stop: asyncio.Event, loader: Loader, grpc_server: GrpcServer
) -> int:
    settings = state.settings
    load = asyncio.ensure_future(asyncio.to_thread(prepare, settings, state.metrics, loader=loader))
    stopped = asyncio.ensure_future(stop.wait())
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
    state.attach(model)
    if settings.require_gpu and model.session.execution_provider == "cpu":
        state.not_ready_reason = (
            "a GPU is required (requireGPU) but the model runs on the CPU: "
            "no CUDA or TensorRT provider is active"
        )
        log.error("not ready: %s", state.not_ready_reason)
    else:
        state.not_ready_reason = ""
        if state.group is not None:
            state.group.mark_ready()
        log.info(
            "ready: model %r version %r on %s",
            settings.served_name,
            settings.model_version,
            model.session.execution_provider,
        )
        if await wait_group_ready(state, stop):
            await grpc_server.set_serving(True)
    await stopped
    await grpc_server.set_serving(False)
    return await _drain(state)


async def wait_group_ready(state: ServerState, stop: asyncio.Event, period: float = 0.05) -> bool:
    """Wait until the whole process group is ready, so gRPC health agrees with HTTP readiness."""
    while state.readiness_problem():
        if stop.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
    return True


async def _drain(state: ServerState) -> int:
    state.draining = True
    grace = state.settings.shutdown_grace_seconds
    deadline = time.monotonic() + grace
    log.info("draining: %d requests in flight, grace %.1f s", state.in_flight, grace)
    if state.batcher is not None and not await state.batcher.drain(grace):
        log.warning("grace period over with requests still queued")
    if state.in_flight:
        try:
            await asyncio.wait_for(state.idle.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            log.warning("grace period over with %d requests in flight", state.in_flight)
    log.info("drained; exiting")
    return 0

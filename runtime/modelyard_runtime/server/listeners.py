"""One server process's listeners, HTTP (aiohttp) and gRPC (and /metrics on its own port when
``metrics_port`` is set), and their connections.

``start`` binds both ports; while serving, a sweeper marks the HTTP connections past their age,
and in a process group those above this process's share (``connections``); ``stop_accepting``
closes the listening sockets (kept-alive HTTP connections stay and are still served; gRPC sends
GOAWAY and finishes its RPCs); ``close`` ends what is left: idle connections at once, busy ones
after their response. Used by ``server.run``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.server.app import build_app, metrics_app
from modelyard_runtime.server.connections import GROUP_SWEEP_PERIOD, ConnectionAges, excess
from modelyard_runtime.server.framing import JsonErrorRunner
from modelyard_runtime.server.grpc_v2 import GrpcServer
from modelyard_runtime.server.processes import ProcessGroup

log = logging.getLogger(__name__)

MIN_SHUTDOWN_SECONDS = 0.05


class Listeners:
    def __init__(self, plane: DataPlane, *, group: ProcessGroup | None) -> None:
        settings = plane.settings
        self._plane = plane
        self._group = group
        self._reuse_port = group is not None
        self.ages = ConnectionAges(settings.max_connection_age_seconds)
        self.runner = JsonErrorRunner(
            build_app(plane, self.ages),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=max(settings.shutdown_grace_seconds, MIN_SHUTDOWN_SECONDS),
        )
        self.metrics_runner: web.AppRunner | None = None
        if settings.metrics_port is not None:
            self.metrics_runner = web.AppRunner(
                metrics_app(plane), access_log=None, handle_signals=False, shutdown_timeout=1.0
            )
        self.grpc: GrpcServer | None = None
        self._site: web.TCPSite | None = None
        self._sweeper: asyncio.Future[None] | None = None
        self._grpc_stopping: asyncio.Future[None] | None = None
        self._set_up = False
        self._metrics_set_up = False

    async def start(self) -> None:
        """Listen on both ports; ``OSError`` or ``RuntimeError`` when one cannot be bound."""
        settings = self._plane.settings
        await self.runner.setup()
        self._set_up = True
        site = web.TCPSite(
            self.runner,
            settings.host,
            settings.http_port,
            backlog=1024,
            reuse_port=self._reuse_port,
        )
        await site.start()
        self._site = site
        self.grpc = GrpcServer(self._plane, reuse_port=self._reuse_port)
        for address in self.runner.addresses:
            log.info("listening on http://%s:%d", address[0], address[1])
        await self.grpc.start()
        await self._start_metrics()
        if self.ages.max_age > 0 or self._group is not None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _start_metrics(self) -> None:
        settings = self._plane.settings
        if self.metrics_runner is None or settings.metrics_port is None:
            return
        await self.metrics_runner.setup()
        self._metrics_set_up = True
        site = web.TCPSite(
            self.metrics_runner, settings.host, settings.metrics_port, reuse_port=self._reuse_port
        )
        await site.start()
        for address in self.metrics_runner.addresses:
            log.info("listening on metrics http://%s:%d/metrics", address[0], address[1])

    async def _sweep(self) -> None:
        ages, group = self.ages, self._group
        period = ages.period if group is None else min(ages.period, GROUP_SWEEP_PERIOD)
        while True:
            server = self.runner.server
            connections = server.connections if server is not None else []
            shed = 0
            if group is not None:
                group.publish_connections(len(connections))
                shed = excess(len(connections), group.sibling_connections())
            ages.sweep(connections, time.monotonic(), shed=shed)
            await asyncio.sleep(period)

    async def set_serving(self, serving: bool) -> None:
        """What gRPC health reports (HTTP readiness asks the data plane itself)."""
        if self.grpc is not None:
            await self.grpc.set_serving(serving)

    async def stop_accepting(self, grace: float) -> None:
        """Close the listening sockets; gRPC sends GOAWAY and gives its RPCs ``grace``."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self.grpc is not None and self._grpc_stopping is None:
            self._grpc_stopping = asyncio.ensure_future(self.grpc.stop(grace))

    async def close(self, timeout: float | None = None) -> None:
        """End every connection and stop both servers; a request still in progress (a client
        stalled mid-body) is cancelled after ``timeout`` (default: the grace period)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.stop_accepting(grace=1.0)  # unless the drain did already
        if self._set_up:
            self._set_up = False
            server = self.runner.server
            if server is not None and timeout is not None:
                # aiohttp waits for a handler, then as long again for its cancellation: half
                # each. Never 0, which aiohttp reads as "no limit".
                server.pre_shutdown()
                await server.shutdown(max(MIN_SHUTDOWN_SECONDS, timeout / 2))
            await self.runner.cleanup()
        if self.metrics_runner is not None and self._metrics_set_up:
            await self.metrics_runner.cleanup()
        if self._grpc_stopping is not None:
            await self._grpc_stopping

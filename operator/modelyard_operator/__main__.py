"""``modelyard-operator``: parse the configuration, set up logging, run kopf.

Exit codes: 0 clean stop, 1 leadership lost (with ``leader_election``), 2 invalid configuration
(the message names the field). The metrics endpoint (``/metrics``) is served on ``metrics_port``,
kopf's liveness probe (``/healthz``) on ``health_port``. With ``leader_election`` kopf starts
only once this process holds the Lease (``handlers.leader``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import aiohttp
import kopf
from aiohttp import web

from modelyard_operator import __version__
from modelyard_operator.analysis.prometheus import PrometheusSource
from modelyard_operator.config import OperatorConfig, load_config
from modelyard_operator.controller.sync import Controller
from modelyard_operator.controller.view import View
from modelyard_operator.errors import ConfigError
from modelyard_operator.handlers import leader
from modelyard_operator.handlers.connection import Connection
from modelyard_operator.handlers.registry import build_registry
from modelyard_operator.handlers.settings import configure
from modelyard_operator.metrics import OperatorMetrics

log = logging.getLogger("modelyard_operator")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and kopf's object when known."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        k8s_ref = getattr(record, "k8s_ref", None)
        if isinstance(k8s_ref, dict):
            entry["object"] = f"{k8s_ref.get('namespace', '')}/{k8s_ref.get('name', '')}"
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True)


def configure_logging(config: OperatorConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # kopf logs every handler run at INFO: at a thousand objects that drowns everything else.
    if config.log_level != "DEBUG":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


async def serve_metrics(metrics_: OperatorMetrics, port: int) -> web.AppRunner:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics_.render(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", port)
    await site.start()
    log.info("metrics on %s/metrics", site.name)
    return runner


async def run(config: OperatorConfig) -> None:
    identity = os.environ.get("POD_NAME") or socket.gethostname()
    connection = Connection(max_concurrent_reconciles=config.max_concurrent_reconciles)
    prometheus = aiohttp.ClientSession() if config.prometheus_url else None
    source = PrometheusSource(prometheus, config.prometheus_url) if prometheus else None
    controller = Controller(
        config=config, client=connection, view=View({}, {}, {}), source=source,
        identity=identity,
    )  # fmt: skip
    registry = build_registry(controller, connection)
    settings = kopf.OperatorSettings()
    configure(settings)
    settings.posting.reporting_instance = identity
    runner = await serve_metrics(controller.metrics, config.metrics_port)
    try:
        async with leader.leadership(config, settings, identity) as stop_flag:
            await kopf.operator(
                registry=registry,
                settings=settings,
                stop_flag=stop_flag,
                standalone=True,
                # kopf would ask the password database for the user name, which a container's
                # arbitrary uid (65532 here) is not in; the pod (or host) name says more anyway.
                # (cast: kopf types it as a NewType of str that it does not export.)
                identity=cast(Any, identity),
                clusterwide=not config.namespaces,
                namespaces=list(config.namespaces),
                liveness_endpoint=f"http://0.0.0.0:{config.health_port}/healthz",
            )
    finally:
        await runner.cleanup()
        if prometheus is not None:
            await prometheus.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelyard-operator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("MODELYARD_OPERATOR_CONFIG") or None,
        help="YAML configuration file [env MODELYARD_OPERATOR_CONFIG]",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, os.environ)
    except ConfigError as e:
        parser.exit(2, f"modelyard-operator: error: {e}\n")
    configure_logging(config)
    log.info("modelyard-operator %s starting", __version__)
    try:
        asyncio.run(run(config))
    except ConfigError as e:  # found only at start-up, e.g. no namespace for the Lease
        parser.exit(2, f"modelyard-operator: error: {e}\n")
    except leader.LeadershipLostError as e:
        log.error("%s; exiting so that the pod restarts as a standby", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Several server processes on one pair of ports: ``--processes N`` (``MODELYARD_PROCESSES``).

One Python process handles requests on at most one core: its event loop decodes, batches and
encodes every request. With more than one process (``processes``, or ``sizing``'s rule when it is
0), the process started as ``serve`` becomes a supervisor that serves nothing itself:

- it reserves the HTTP and gRPC ports (bound with ``SO_REUSEPORT``, never listening), so port 0
  picks one port that every process then shares;
- it starts N copies of its own command line, each told its place by ``MODELYARD_PROCESS_GROUP``
  (JSON: index, count, ports, shared directory, supervisor pid);
- each copy is a whole server (its own session, batcher and event loop) listening on the same
  ports with ``SO_REUSEPORT``; the kernel spreads new connections over them by a hash, and a
  copy that holds more than its share of the HTTP connections (each publishes its count in the
  shared directory) asks the excess to reconnect (``connections.excess``);
- metrics use prometheus_client's multiprocess mode in the shared directory, so a scrape of any
  process reports the sum over all of them;
- each process writes ``ready-<index>`` into the shared directory when its model is ready, and
  reports Ready only when every process has;
- SIGTERM and SIGINT are forwarded (the one received) and every process drains. If one exits on
  its own, the others are stopped and the supervisor exits non-zero, so Kubernetes restarts the
  container whole;
- a process whose supervisor is gone stops by itself.

``server.run.serve`` calls ``supervise``; the copies find their ``ProcessGroup`` in the env.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from modelyard_runtime.cpus import usable_cpus
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import listen_failed, report_fatal, write_termination_log

log = logging.getLogger(__name__)

GROUP_ENV: Final = "MODELYARD_PROCESS_GROUP"
METRICS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
KILL_MARGIN_SECONDS: Final = 10.0  # after the drain grace, before SIGKILL


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProcessGroup:
    """Where one server process stands among its siblings."""

    index: int
    count: int
    directory: str
    http_port: int
    grpc_port: int
    supervisor: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProcessGroup | None:
        raw = environ.get(GROUP_ENV)
        return cls(**json.loads(raw)) if raw else None

    def settings_for(self, settings: Settings) -> Settings:
        """This process's settings: the reserved ports and its share of the CPUs (onnxruntime)."""
        threads = settings.intra_op_threads or max(1, usable_cpus() // self.count)
        return dataclasses.replace(
            settings,
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            intra_op_threads=threads,
        )

    def mark_ready(self) -> None:
        (Path(self.directory) / f"ready-{self.index}").touch()

    def ready_count(self) -> int:
        directory = Path(self.directory)
        return sum((directory / f"ready-{index}").exists() for index in range(self.count))

    def publish_connections(self, count: int) -> None:
        """Write how many HTTP connections this process holds, for its siblings to read."""
        path = Path(self.directory) / f"connections-{self.index}"
        staged = path.with_name(path.name + ".new")
        staged.write_text(str(count))
        os.replace(staged, path)

    def sibling_connections(self) -> list[int]:
        """What each sibling last published (0 before it has)."""
        counts = []
        for index in range(self.count):
            if index != self.index:
                try:
                    counts.append(int((Path(self.directory) / f"connections-{index}").read_text()))
                except (OSError, ValueError):
                    counts.append(0)
        return counts

    def orphaned(self) -> bool:
        """True once the supervisor is gone (this process was handed to another parent)."""
        return os.getppid() != self.supervisor


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (never listen) with SO_REUSEPORT: holds ``port`` (or picks one) for the group."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _command_line() -> list[str]:
    """This process's own command line, to start its copies with."""
    return [sys.executable, *sys.orig_argv[1:]]


async def supervise(settings: Settings, count: int) -> int:
    """Run ``count`` servers on shared ports until SIGTERM; the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):  # before any child exists
        loop.add_signal_handler(signum, on_signal, signum)
    directory = tempfile.mkdtemp(prefix="modelyard-")
    reserved: list[socket.socket] = []
    try:
        try:
            reserved.append(reserve_port(settings.host, settings.http_port))
            reserved.append(reserve_port(settings.host, settings.grpc_port))
        except OSError as e:
            return listen_failed(settings, e)
        http_port, grpc_port = (sock.getsockname()[1] for sock in reserved)
        try:
            children = await _start(settings, count, directory, http_port, grpc_port)
        except OSError as e:
            message = f"cannot start the server processes: {e}"
            report_fatal(settings.termination_log, "serve", message)
            return 1
        log.info(
            "started %d server processes (pids %s) on http port %d and grpc port %d, sharing %s",
            len(children),
            ", ".join(str(child.pid) for child in children),
            http_port,
            grpc_port,
            directory,
        )
        return await _watch(children, settings, stop, received)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for sock in reserved:
            sock.close()
        shutil.rmtree(directory, ignore_errors=True)


async def _start(
    settings: Settings, count: int, directory: str, http_port: int, grpc_port: int
) -> list[asyncio.subprocess.Process]:
    """Start the copies; if one cannot start, stop those that did and raise."""
    children: list[asyncio.subprocess.Process] = []
    try:
        for index in range(count):
            group = ProcessGroup(
                index=index,
                count=count,
                directory=directory,
                http_port=http_port,
                grpc_port=grpc_port,
                supervisor=os.getpid(),
            )
            env = {**os.environ, GROUP_ENV: json.dumps(dataclasses.asdict(group))}
            env[METRICS_DIR_ENV] = directory
            child = await asyncio.create_subprocess_exec(
                *_command_line(),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # terminal signals reach them through us only
            )
            children.append(child)
    except OSError:
        for started in children:
            started.send_signal(signal.SIGTERM)
        await asyncio.gather(*(started.wait() for started in children))
        raise
    return children


async def _watch(
    children: list[asyncio.subprocess.Process],
    settings: Settings,
    stop: asyncio.Event,
    received: list[int],
) -> int:
    """Wait for a stop signal or the first exit, stop the rest, and pick the exit code."""
    exits = {asyncio.ensure_future(child.wait()): index for index, child in enumerate(children)}
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if stopped in done:
            log.info("stopping %d server processes", len(children))
        else:
            index = exits[next(task for task in done if task is not stopped)]
            code = _unexpected_exit(index, children[index], settings)
        forwarded = received[0] if received else signal.SIGTERM
        for child in children:
            if child.returncode is None:
                child.send_signal(forwarded)
        timeout = settings.shutdown_grace_seconds + KILL_MARGIN_SECONDS
        _, late = await asyncio.wait(exits, timeout=timeout)
        for task in late:
            log.warning("server process %d outlived the grace period; killing it", exits[task])
            children[exits[task]].kill()
        await asyncio.gather(*exits)
        # A copy still starting when the signal came dies of it, before it can drain: it had
        # nothing to drain, so that is a clean stop.
        if code == 0 and any(child.returncode not in (0, -forwarded) for child in children):
            code = 1
        return code
    finally:
        stopped.cancel()


def _unexpected_exit(index: int, child: asyncio.subprocess.Process, settings: Settings) -> int:
    returncode = child.returncode or 0
    if returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was killed by signal {-returncode}"
        # It wrote no termination log of its own.
        message = f"server process {index} (pid {child.pid}) {how}"
        write_termination_log(settings.termination_log, f"serve: {message}")
    else:
        how = f"exited with code {returncode}"
    log.error("server process %d (pid %d) %s; stopping the others", index, child.pid, how)
    return returncode if returncode > 0 else 1


async def housekeep(
    group: ProcessGroup, stop: asyncio.Event, tick: Callable[[], None], period: float = 1.0
) -> None:
    """Call ``tick`` every ``period`` s; set ``stop`` once the supervisor is gone."""
    while not stop.is_set():
        tick()
        if group.orphaned():
            log.error("the supervisor (pid %d) is gone; stopping", group.supervisor)
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)

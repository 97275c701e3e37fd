"""The process group's pieces that need no processes: env, settings share, ports, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from pathlib import Path

import pytest

from modelyard_runtime.cpus import usable_cpus
from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.metrics import RuntimeMetrics
from modelyard_runtime.server import processes
from modelyard_runtime.server.processes import GROUP_ENV, ProcessGroup, reserve_port
from modelyard_runtime.server.run import wait_group_ready
from modelyard_runtime.settings import Settings

GROUP = ProcessGroup(
    index=1, count=2, directory="/tmp/g", http_port=8080, grpc_port=8081, supervisor=7
)


def test_a_group_comes_from_its_env_variable() -> None:
    assert ProcessGroup.from_environ({}) is None
    environ = {GROUP_ENV: json.dumps(dataclasses.asdict(GROUP))}
    assert ProcessGroup.from_environ(environ) == GROUP


def test_each_process_gets_the_ports_and_its_share_of_the_cpus() -> None:
    settings = GROUP.settings_for(Settings(model_path="m.onnx", http_port=0, grpc_port=0))
    assert (settings.http_port, settings.grpc_port) == (8080, 8081)
    assert settings.intra_op_threads == max(1, usable_cpus() // 2)
    chosen = GROUP.settings_for(Settings(model_path="m.onnx", intra_op_threads=3))
    assert chosen.intra_op_threads == 3


def test_reserved_ports_are_shared_only_by_reusing_sockets() -> None:
    first = reserve_port("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reserve_port("127.0.0.1", port)  # a sibling: SO_REUSEPORT as well
    with first, second, socket.socket() as plain, pytest.raises(OSError, match="in use"):
        plain.bind(("127.0.0.1", port))


def test_ready_markers_are_counted(tmp_path: Path) -> None:
    group = dataclasses.replace(GROUP, directory=str(tmp_path))
    assert group.ready_count() == 0
    group.mark_ready()
    assert group.ready_count() == 1
    assert (tmp_path / "ready-1").exists()


def test_multiprocess_metrics_need_the_env_set_before_import(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        RuntimeMetrics(
            model="m", version="1", revision="", track="stable", multiprocess_dir=str(tmp_path)
        )


async def test_grpc_serving_waits_for_the_whole_group(tmp_path: Path) -> None:
    plane = DataPlane.for_settings(Settings(model_path="m.onnx"))
    group = dataclasses.replace(GROUP, directory=str(tmp_path))
    plane.readiness.siblings = group
    plane.readiness.not_ready_reason = ""
    group.mark_ready()
    stop = asyncio.Event()
    waiting = asyncio.ensure_future(wait_group_ready(plane, stop, period=0.01))
    await asyncio.wait({waiting}, timeout=0.05)
    assert not waiting.done()  # process 0 is not ready yet
    (tmp_path / "ready-0").touch()
    assert await asyncio.wait_for(waiting, 10) is True
    plane.readiness.group_ready = False
    (tmp_path / "ready-0").unlink()
    stop.set()
    assert await asyncio.wait_for(wait_group_ready(plane, stop), 10) is False


async def test_a_process_that_cannot_start_is_a_serve_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-python"
    monkeypatch.setattr(processes, "_command_line", lambda: [str(missing)])
    log = tmp_path / "termination-log"
    settings = Settings(
        model_path="m.onnx", host="127.0.0.1", http_port=0, grpc_port=0, processes=2,
        termination_log=str(log),
    )  # fmt: skip
    assert await processes.supervise(settings, settings.processes) == 1
    assert log.read_text().startswith("serve: cannot start the server processes: ")
    assert str(missing) in log.read_text()


def test_each_process_publishes_its_connections_for_the_others(tmp_path: Path) -> None:
    first = dataclasses.replace(GROUP, index=0, count=3, directory=str(tmp_path))
    second = dataclasses.replace(first, index=1)
    assert first.sibling_connections() == [0, 0]  # nothing published yet
    first.publish_connections(6)
    second.publish_connections(2)
    assert first.sibling_connections() == [2, 0]
    assert second.sibling_connections() == [6, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["connections-0", "connections-1"]

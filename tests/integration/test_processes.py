"""``--processes N``: N real server processes share the ports, the metrics and the lifecycle."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import pytest
import tritonclient.grpc as grpcclient

from hack.testbed.metrics_text import samples, value
from hack.testbed.processes import RuntimeProcess

pytestmark = pytest.mark.slow

STARTED = (
    r"started (\d+) server processes \(pids ([\d, ]+)\) on http port (\d+) "
    r"and grpc port (\d+), sharing (\S+)"
)
BODY = orjson.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
)


class Group:
    """The supervisor process and what its start-up line says."""

    def __init__(self, process: RuntimeProcess) -> None:
        match = process.wait_for(STARTED, 60)
        self.process = process
        self.pids = [int(pid) for pid in match.group(2).split(", ")]
        self.port = int(match.group(3))
        self.grpc_port = int(match.group(4))
        self.directory = Path(match.group(5))

    def get(self, path: str) -> tuple[int, bytes]:
        """One request on a new connection (so any of the processes may answer it)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.process.url(timeout)  # a process listens
        deadline = time.monotonic() + timeout
        while self.get("/v2/health/ready")[0] != 200:
            assert time.monotonic() < deadline, self.process.log
            assert self.process.popen.poll() is None, self.process.log


def start(model: Path, tmp_path: Path, *extra: str) -> Group:
    args = ["--model", str(model), "--name", "tiny", "--processes", "2", "--warmup", "1"]
    log = ["--termination-log", str(tmp_path / "termination-log")]
    return Group(RuntimeProcess([*args, *log, *extra]))


@pytest.fixture
def group(models: dict[str, Path], tmp_path: Path) -> Iterator[Group]:
    started = start(models["tiny"], tmp_path)
    try:
        yield started
    finally:
        started.process.kill()
        for pid in started.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(started.directory, ignore_errors=True)  # left when the supervisor is killed


def alive(pid: int) -> bool:
    """False once ``pid`` has exited (a zombie waiting to be reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        time.sleep(0.05)  # polling /proc; nothing to wait on


def connections(pid: int, port: int) -> int:
    """Established TCP connections on local ``port`` held by process ``pid`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            socket_inode = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
        if socket_inode:
            inodes.add(socket_inode.group(1))
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            established = fields[3] == "01"
            if established and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                count += 1
    return count


def test_processes_share_the_port_and_sum_their_metrics(group: Group) -> None:
    group.wait_ready()
    assert len(group.pids) == 2
    clients = [http.client.HTTPConnection("127.0.0.1", group.port, timeout=10) for _ in range(16)]
    try:
        for client in clients:  # 16 kept-alive connections, spread by the kernel
            client.request(
                "POST", "/v2/models/tiny/infer", BODY, {"Content-Type": "application/json"}
            )
            response = client.getresponse()
            assert response.status == 200
            assert orjson.loads(response.read())["outputs"][0]["data"] == [2, 4, 6, 8]
        held = [connections(pid, group.port) for pid in group.pids]
    finally:
        for client in clients:
            client.close()
    assert sum(held) == 16
    assert min(held) >= 1, f"one process took every connection: {held}"
    for _ in range(6):  # whichever process answers, it reports both processes' requests
        status, body = group.get("/metrics")
        text = body.decode()
        assert status == 200
        assert value(text, "modelyard_requests_total", code="200", protocol="rest") == 16
        assert value(text, "modelyard_request_duration_seconds_count", protocol="rest") == 16
        assert value(text, "modelyard_model_info") == 1
        assert all("pid" not in labels for labels, _ in samples(text, "modelyard_model_info"))


def test_kept_alive_connections_are_spread_evenly(models: dict[str, Path], tmp_path: Path) -> None:
    group = start(models["tiny"], tmp_path, "--max-connection-age-seconds", "0")  # no ageing
    clients = [http.client.HTTPConnection("127.0.0.1", group.port, timeout=10) for _ in range(16)]
    try:
        group.wait_ready()
        deadline = time.monotonic() + 15
        while True:  # steady requests; an uneven split by the kernel's hash is evened out
            for client in clients:
                client.request(
                    "POST", "/v2/models/tiny/infer", BODY, {"Content-Type": "application/json"}
                )
                response = client.getresponse()
                assert response.status == 200
                response.read()  # on Connection: close, the next request reconnects
            held = [connections(pid, group.port) for pid in group.pids]
            if held == [8, 8]:
                break
            assert time.monotonic() < deadline, f"never evened out: {held}"
    finally:
        for client in clients:
            client.close()
        group.process.kill()
        for pid in group.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(group.directory, ignore_errors=True)


def test_grpc_is_served_on_the_shared_port(group: Group) -> None:
    group.wait_ready()
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{group.grpc_port}")
    tensor = grpcclient.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.array([[1, 2, 3, 4]], np.float32))
    result = client.infer("tiny", [tensor])
    assert result.as_numpy("double").tolist() == [[2, 4, 6, 8]]
    client.close()


async def test_in_flight_requests_are_summed_over_processes_and_drained(
    models: dict[str, Path],
) -> None:
    process = RuntimeProcess(
        [
            "--model", str(models["tiny"]), "--name", "slow", "--processes", "2",
            "--max-batch-size", "1", "--inference-workers", "6", "--warmup", "none",
            "--compute-seconds", "2",
        ],
        module="tests.support.slow_server",
    )  # fmt: skip
    group = Group(process)
    try:
        await asyncio.to_thread(group.wait_ready)
        base = f"http://127.0.0.1:{group.port}"
        body = orjson.loads(BODY)
        async with aiohttp.ClientSession() as session:
            accepted = [
                asyncio.ensure_future(session.post(base + "/v2/models/slow/infer", json=body))
                for _ in range(12)
            ]
            deadline = asyncio.get_running_loop().time() + 10
            while True:  # each process samples its own count; any scrape sums them
                async with session.get(base + "/metrics") as response:
                    text = await response.text()
                if value(text, "modelyard_requests_in_flight") == 12:
                    break
                assert asyncio.get_running_loop().time() < deadline, text
            process.terminate()
            responses = await asyncio.gather(*accepted)
            statuses = [response.status for response in responses]
        assert statuses == [200] * 12
        assert await asyncio.to_thread(process.wait, 30) == 0
        wait_gone(group.pids)
    finally:
        process.kill()


def test_sigterm_drains_every_process_and_cleans_up(group: Group) -> None:
    group.wait_ready()
    assert group.directory.is_dir()
    group.process.terminate()
    assert group.process.wait(60) == 0, group.process.log
    wait_gone(group.pids)
    assert not group.directory.exists()
    assert group.process.log.count("drained; exiting") == 2


def test_a_process_that_dies_takes_the_group_down(group: Group, tmp_path: Path) -> None:
    group.wait_ready()
    os.kill(group.pids[0], signal.SIGKILL)
    assert group.process.wait(60) == 1, group.process.log
    wait_gone(group.pids)
    message = (tmp_path / "termination-log").read_text().strip()
    assert message == f"serve: server process 0 (pid {group.pids[0]}) was killed by SIGKILL"


def test_processes_stop_when_the_supervisor_is_killed(group: Group) -> None:
    group.wait_ready()
    group.process.kill()
    wait_gone(group.pids)
    assert not any(alive(pid) for pid in group.pids)


def test_a_startup_failure_names_its_stage(models: dict[str, Path], tmp_path: Path) -> None:
    failing = start(models["tiny"], tmp_path, "--sha256", "0" * 64)
    try:
        assert failing.process.wait(60) == 1, failing.process.log
        wait_gone(failing.pids)
    finally:
        failing.process.kill()
    assert (tmp_path / "termination-log").read_text().startswith("verify: sha256 of ")


def test_a_taken_port_is_a_listen_failure(models: dict[str, Path], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--model", str(models["tiny"]), "--processes", "2", "--http-port", str(port)]
        process = RuntimeProcess([*args, "--termination-log", str(tmp_path / "termination-log")])
        try:
            assert process.wait(60) == 1, process.log
        finally:
            process.kill()
    message = (tmp_path / "termination-log").read_text()
    assert message.startswith(f"listen: cannot listen on 127.0.0.1 (http {port}, grpc 0)")
    assert "started" not in process.log

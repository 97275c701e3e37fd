"""Connection rebalancing (design §4): kept-alive clients move to a new connection after the age.

A real server with ``--max-connection-age-seconds 1``: an HTTP client that keeps its connection
alive is answered ``Connection: close`` once the connection is a second old and goes on over a
new one; a gRPC channel gets GOAWAY and reconnects by itself. No request fails either way.
"""

from __future__ import annotations

import http.client
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest

from hack.testbed.processes import RuntimeProcess
from modelyard_runtime.protocol.pb import inference_pb2 as pb
from modelyard_runtime.protocol.pb import inference_pb2_grpc

pytestmark = pytest.mark.slow

AGE = 1.0
BODY = orjson.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
)


@pytest.fixture(scope="module")
def server(models: dict[str, Path]) -> Iterator[RuntimeProcess]:
    process = RuntimeProcess(
        ["--model", str(models["tiny"]), "--max-connection-age-seconds", str(AGE)]
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.terminate()
        assert process.wait() == 0, process.log


def local_ports(remote_port: int) -> set[int]:
    """Local ports of this process's established TCP connections to ``remote_port``."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            found = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
        if found:
            inodes.add(found.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            to_port = int(remote.rsplit(":", 1)[1], 16) == remote_port
            if state == "01" and to_port and inode in inodes:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_a_kept_alive_http_client_is_moved_to_a_new_connection(server: RuntimeProcess) -> None:
    host, port = server.url().removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        served: list[tuple[int, str | None]] = []
        connection.connect()
        first_port = connection.sock.getsockname()[1]
        opened = time.monotonic()
        while True:  # steady requests on the one kept-alive connection
            connection.request("POST", "/v2/models/tiny/infer", BODY)
            response = connection.getresponse()
            response.read()
            served.append((response.status, response.getheader("Connection")))
            if response.getheader("Connection") == "close":
                break
            assert connection.sock.getsockname()[1] == first_port
            assert time.monotonic() - opened < 10 * AGE, "never told to close"
        assert time.monotonic() - opened >= 0.9 * AGE  # the age, less at most 10 % jitter
        assert all(status == 200 for status, _ in served)
        assert [header for _, header in served[:-1]] == [None] * (len(served) - 1)
        connection.request("POST", "/v2/models/tiny/infer", BODY)  # reconnects by itself
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert connection.sock.getsockname()[1] != first_port
    finally:
        connection.close()


def test_a_grpc_channel_reconnects_after_goaway(server: RuntimeProcess) -> None:
    address = server.grpc_address()
    grpc_port = int(address.rsplit(":", 1)[1])
    request = pb.ModelInferRequest(model_name="tiny")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend(
        [1, 2, 3, 4]
    )
    with grpc.insecure_channel(address) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.ModelInfer(request, timeout=10)
        first = local_ports(grpc_port)
        assert len(first) == 1
        opened = time.monotonic()
        calls = 0
        while (now := local_ports(grpc_port)) <= first:  # the same connection, still
            response = stub.ModelInfer(request, timeout=10)  # raises on any failure
            assert response.outputs[0].name == "double"
            calls += 1
            assert time.monotonic() - opened < 10 * AGE, "the channel never reconnected"
        assert time.monotonic() - opened >= 0.8 * AGE  # gRPC's age, less its jitter
        assert calls > 0
        assert now - first, f"no new connection: {first} -> {now}"
        stub.ModelInfer(request, timeout=10)  # and it serves on the new one

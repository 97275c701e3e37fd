"""Hostile clients against real server processes (``hack.testbed.hostile``): bombs, lying
headers, slow and stalled clients, a never-ending body, huge valid requests, overload, and
SIGTERM with a client stalled mid-body.

Throughout, a thread polls readiness: every answer within a second. After, the process's RSS is
back under a stated bound, it logged no ERROR, and it still answers correctly.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from hack.testbed import hostile
from hack.testbed.metrics_text import value
from hack.testbed.processes import RuntimeProcess

pytestmark = pytest.mark.slow

BODY_TIMEOUT = 2.0
HEALTH_BOUND = 1.0  # seconds: what a kubelet's probe would wait
RSS_GROWTH_BOUND = 64.0  # MiB over the RSS before the hostile clients, once they are done
GRACE = 8.0  # the drain ends 2 s before: an exit on a loaded machine took over 1 s


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@pytest.fixture(scope="module")
def server(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    token = tmp_path_factory.mktemp("hostile") / "token"
    token.write_text(hostile.TOKEN)
    process = RuntimeProcess(
        ["--model", str(models["tiny"]), "--processes", "1", "--auth-token-file", str(token),
         "--body-timeout-seconds", str(BODY_TIMEOUT)]
    )  # fmt: skip
    try:
        process.wait_ready()
        yield process
    finally:
        process.kill()


def metrics(url: str) -> str:
    result = hostile.json_request(address(url), "GET", "/metrics")
    return result.body.decode()


def test_every_hostile_client_gets_its_json_4xx_while_health_stays_fast(
    server: RuntimeProcess,
) -> None:
    url = server.url()
    host, port = address(url)
    pid = server.popen.pid
    before = hostile.rss_mib(pid)
    outcomes = []
    cases = hostile.cases(BODY_TIMEOUT)  # built first: building holds this process's GIL
    with hostile.HealthPoller((host, port)) as poller:
        for case in cases:
            outcomes.append((case, case.run(host, port)))
    wrong = [
        (case.category, case.name, result.status, result.error)
        for case, result in outcomes
        if result.status not in case.expected or not result.json_error
    ]
    assert not wrong
    assert not poller.failures
    assert len(poller.latencies) > 20
    assert poller.worst < HEALTH_BOUND, f"readiness took {poller.worst:.2f} s"
    bound = before + RSS_GROWTH_BOUND
    assert hostile.rss_falls_below(pid, bound) < bound
    after = hostile.json_request((host, port), "POST", hostile.INFER, hostile.tiny_body(2))
    assert after.status == 200
    assert b'"data":[2.0,2.0,2.0,2.0,2.0,2.0,2.0,2.0]' in after.body
    # A client gone mid-body is not an error: 499 in the metrics, nothing logged as ERROR.
    text = metrics(url)
    assert value(text, "modelyard_requests_total", code="499", protocol="rest") >= 1
    assert value(text, "modelyard_requests_total", code="408", protocol="rest") >= 2
    assert not [line for line in server.lines if " ERROR " in line or "Traceback" in line]


def test_a_huge_batch_leaves_no_memory_behind(models: dict[str, Path]) -> None:
    """With the rows limit off, 200,000 rows through a 64-128-10 MLP (100 MiB of activations):
    answered, and the RSS comes back (onnxruntime's CPU arena, off by default, would keep it)."""
    process = RuntimeProcess(
        ["--model", str(models["mlp"]), "--processes", "1", "--max-request-rows", "0"]
    )
    try:
        host, port = address(process.wait_ready())
        rows = 200_000
        data = np.ones((rows, 64), dtype=np.float32).tobytes()
        header = orjson.dumps(
            {"inputs": [{"name": "input", "shape": [rows, 64], "datatype": "FP32",
                         "parameters": {"binary_data_size": len(data)}}],
             "parameters": {"binary_data_output": True}}
        )  # fmt: skip
        before = hostile.rss_mib(process.popen.pid)
        result = hostile.json_request(
            (host, port), "POST", "/v2/models/mlp/infer", header + data,
            **{"Inference-Header-Content-Length": str(len(header)),
               "Content-Type": "application/octet-stream"},
        )  # fmt: skip
        assert result.status == 200
        assert len(result.body) > rows * 10 * 4
        bound = before + RSS_GROWTH_BOUND
        assert hostile.rss_falls_below(process.popen.pid, bound) < bound
    finally:
        process.kill()


def test_idle_connections_and_unfinished_heads_are_closed_after_the_keepalive_timeout(
    models: dict[str, Path],
) -> None:
    process = RuntimeProcess(
        ["--model", str(models["tiny"]), "--processes", "1", "--keepalive-timeout-seconds", "0.5"]
    )
    try:
        host, port = address(process.wait_ready())
        body = hostile.tiny_body()
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(hostile.request_head(length=len(body), auth=b"") + body)
            status, _, _ = hostile.read_response(sock)
            assert status == 200
            started = time.monotonic()
            assert sock.recv(1) == b""  # the server closes the idle connection
            assert time.monotonic() - started < 5
        for head in (b"", b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: r\r\n"):
            with socket.create_connection((host, port), timeout=10) as slowloris:
                slowloris.sendall(head)  # and never the rest of the head
                started = time.monotonic()
                assert slowloris.recv(1) == b""
                assert time.monotonic() - started < 5
    finally:
        process.kill()


def test_overload_is_429_with_retry_after_and_the_rest_are_served(tmp_path: Path) -> None:
    process = hostile.slow_server(tmp_path, "--max-batch-size", "1", "--max-queue-size", "4")
    try:
        host, port = address(process.wait_ready())
        body = hostile.tiny_body()

        def one(_: int) -> tuple[int | None, bool]:
            result = hostile.json_request((host, port), "POST", hostile.INFER, body)
            if result.status == 429:
                assert b"Retry-After: 1" in result.head
            return result.status, result.json_error

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            results = Counter(pool.map(one, range(96)))
        assert set(results) <= {(200, True), (429, True)}
        assert results[(429, True)] > 0
        assert results[(200, True)] > 0
        with hostile.HealthPoller((host, port)) as poller:
            again = hostile.json_request((host, port), "POST", hostile.INFER, body)
        assert again.status == 200
        assert poller.worst < HEALTH_BOUND
    finally:
        process.kill()


def test_sigterm_with_a_client_stalled_mid_body_exits_within_the_grace(tmp_path: Path) -> None:
    process = hostile.slow_server(
        tmp_path, "--shutdown-grace-seconds", str(GRACE), "--body-timeout-seconds", "60"
    )
    try:
        host, port = address(process.wait_ready())
        body = hostile.tiny_body()
        with socket.create_connection((host, port), timeout=30) as stalled:
            stalled.sendall(hostile.request_head(length=len(body)) + body[:20])
            deadline = time.monotonic() + 10
            while "modelyard_requests_in_flight" not in (
                text := metrics(f"http://{host}:{port}")
            ) or (value(text, "modelyard_requests_in_flight") < 1):
                assert time.monotonic() < deadline, "the stalled request never started"
            started = time.monotonic()
            process.terminate()
            assert process.wait(GRACE + 10) == 0
            assert time.monotonic() - started < GRACE
    finally:
        process.kill()

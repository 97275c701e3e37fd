"""SIGTERM under load: readiness drops at once, new requests get 503, no accepted request fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hack.testbed.metrics_text import value
from hack.testbed.processes import RuntimeProcess

pytestmark = pytest.mark.slow

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def grpc_health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        request = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
        status: int = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status
        return status


BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


async def in_flight(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(url + "/metrics") as response:
        return value(await response.text(), "modelyard_requests_in_flight")


async def test_sigterm_drains_in_flight_requests(models: dict[str, Path]) -> None:
    process = RuntimeProcess(
        [
            "--model", str(models["tiny"]), "--name", "slow", "--host", "127.0.0.1",
            "--http-port", "0", "--grpc-port", "0", "--max-batch-size", "1", "--warmup", "none",
            "--shutdown-grace-seconds", "30", "--compute-seconds", "0.1",
        ],
        module="tests.support.slow_server",
    )  # fmt: skip
    try:
        url = process.wait_ready()
        infer = url + "/v2/models/slow/infer"
        async with aiohttp.ClientSession() as session:
            accepted = [asyncio.ensure_future(session.post(infer, json=BODY)) for _ in range(12)]
            deadline = asyncio.get_running_loop().time() + 10
            while await in_flight(session, url) < 12:
                assert asyncio.get_running_loop().time() < deadline, "requests never in flight"
            process.terminate()
            process.wait_for("draining: 12 requests in flight")
            async with session.get(url + "/v2/health/ready") as ready:
                assert ready.status == 503
                assert (await ready.json())["reason"] == "the server is shutting down"
            async with session.post(infer, json=BODY) as late:
                assert late.status == 503
            assert await asyncio.to_thread(grpc_health, process.grpc_address()) == NOT_SERVING
            responses = await asyncio.gather(*accepted)
            statuses = [response.status for response in responses]
            payloads = [await response.json() for response in responses]
        assert statuses == [200] * 12
        assert all(p["outputs"][0]["data"] == [2, 3, 4, 5] for p in payloads)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        process.kill()

"""SIGTERM: unready at once, served on while the endpoints update, then drained; nothing fails.

On Kubernetes a terminating pod keeps receiving requests for a moment (the endpoint removal
reaches kube-proxy late, and kept-alive connections keep sending). So after SIGTERM the runtime
keeps serving, answers with ``Connection: close`` so clients reconnect elsewhere, stops accepting
connections after the drain delay, finishes its work and exits 0.
"""

from __future__ import annotations

import asyncio
import http.client
from collections import Counter
from pathlib import Path

import aiohttp
import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hack.testbed.metrics_text import value
from hack.testbed.processes import RuntimeProcess
from tests.support.asyncwait import eventually

pytestmark = pytest.mark.slow

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
INFER = "/v2/models/slow/infer"


def slow_server(model: Path, compute: float, drain_delay: float) -> RuntimeProcess:
    return RuntimeProcess(
        [
            "--model", str(model), "--name", "slow", "--processes", "1", "--max-batch-size", "1",
            "--warmup", "none", "--shutdown-grace-seconds", "30",
            "--drain-delay-seconds", str(drain_delay), "--compute-seconds", str(compute),
        ],
        module="tests.support.slow_server",
    )  # fmt: skip


def grpc_health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        request = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
        status: int = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status
        return status


async def in_flight(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(url + "/metrics") as response:
        return value(await response.text(), "modelyard_requests_in_flight")


def post(connection: http.client.HTTPConnection) -> http.client.HTTPResponse:
    connection.request("POST", INFER, orjson.dumps(BODY), {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response


async def test_sigterm_serves_on_then_drains_in_flight_requests(models: dict[str, Path]) -> None:
    process = slow_server(models["tiny"], compute=0.2, drain_delay=1)
    try:
        url = process.wait_ready()
        host, port = url.removeprefix("http://").split(":")
        kept = http.client.HTTPConnection(host, int(port), timeout=30)  # kept alive, then idle
        assert post(kept).getheader("Connection") != "close"
        async with aiohttp.ClientSession() as session:
            accepted = [
                asyncio.ensure_future(session.post(url + INFER, json=BODY)) for _ in range(12)
            ]
            deadline = asyncio.get_running_loop().time() + 10
            while await in_flight(session, url) < 12:
                assert asyncio.get_running_loop().time() < deadline, "requests never in flight"
            process.terminate()
            await asyncio.to_thread(process.wait_for, "draining: 12 requests in flight")
            # A new connection during the drain delay is served, and told to go elsewhere.
            late = asyncio.ensure_future(session.post(url + INFER, json=BODY))
            async with session.get(url + "/v2/health/ready") as ready:
                assert ready.status == 503
                assert (await ready.json())["reason"] == "the server is shutting down"
            assert await asyncio.to_thread(grpc_health, process.grpc_address()) == NOT_SERVING
            stopped = await asyncio.to_thread(
                process.wait_for, r"stopped accepting connections: (\d+) requests in flight"
            )
            assert int(stopped.group(1)) > 0  # still working when it stopped listening
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(host, int(port))
            # A connection kept alive from before is still served, once, with Connection: close.
            last = await asyncio.to_thread(post, kept)
            assert (last.status, last.getheader("Connection")) == (200, "close")
            assert ((await late).status, (await late).headers["Connection"]) == (200, "close")
            responses = await asyncio.gather(*accepted)
            statuses = [response.status for response in responses]
            payloads = [await response.json() for response in responses]
        assert statuses == [200] * 12
        assert all(p["outputs"][0]["data"] == [2, 3, 4, 5] for p in payloads)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        process.kill()


class Endpoints:
    """What kube-proxy would pick from: each new connection goes to the next listed server."""

    def __init__(self, *urls: str) -> None:
        self.urls = list(urls)
        self.picks = 0

    def pick(self) -> str:
        self.picks += 1
        return self.urls[self.picks % len(self.urls)]


Outcome = tuple[str, object, bool]  # server, status (or the error), on a new connection


async def client(endpoints: Endpoints, stop: asyncio.Event, log: list[Outcome]) -> None:
    """Closed-loop, kept-alive load; reconnects (through ``endpoints``) when told to close."""
    url, fresh = endpoints.pick(), True
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        while not stop.is_set():
            try:
                async with session.post(url + INFER, json=BODY) as response:
                    await response.read()
                    log.append((url, response.status, fresh))
                    closing = response.headers.get("Connection", "").lower() == "close"
            except aiohttp.ClientError as e:
                log.append((url, e, fresh))
                closing = True
            fresh = closing
            if closing:
                url = endpoints.pick()


async def test_steady_kept_alive_load_through_sigterm_loses_no_request(
    models: dict[str, Path],
) -> None:
    leaving = slow_server(models["tiny"], compute=0.002, drain_delay=5)
    staying = slow_server(models["tiny"], compute=0.002, drain_delay=5)
    try:
        old, new = await asyncio.gather(
            asyncio.to_thread(leaving.wait_ready), asyncio.to_thread(staying.wait_ready)
        )
        endpoints = Endpoints(old, new)
        stop = asyncio.Event()
        log: list[Outcome] = []
        clients = [asyncio.ensure_future(client(endpoints, stop, log)) for _ in range(8)]
        try:
            await eventually(
                lambda: sum(url == old for url, _, _ in log) >= 50, timeout=30, what="load"
            )
            leaving.terminate()
            await asyncio.to_thread(leaving.wait_for, "draining:")
            signalled = len(log)
            # Until the endpoints update, new connections still land on the leaving server.
            await eventually(
                lambda: any(url == old and fresh for url, _, fresh in log[signalled:]),
                timeout=30,
                what="a new connection to the leaving server",
            )
            endpoints.urls = [new]  # the endpoint removal reaches kube-proxy
            assert await asyncio.to_thread(leaving.wait, 60) == 0, leaving.log
            after = len(log)
            await eventually(lambda: len(log) >= after + 50, timeout=30, what="load after")
        finally:
            stop.set()
            await asyncio.gather(*clients)
        outcomes = Counter(str(outcome) for _, outcome, _ in log)
        assert outcomes == {"200": len(log)}, outcomes
        late = [fresh for url, _, fresh in log[signalled:] if url == old]
        assert late, "no request reached the leaving server after SIGTERM"
        assert "drained; exiting" in leaving.log
    finally:
        staying.terminate()
        leaving.kill()
        staying.kill()

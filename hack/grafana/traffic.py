"""Client traffic for the live setup (``hack.grafana.live``), in a background thread.

Round robin over the pods: REST v2, TF-Serving v1 and gRPC requests to the stable pods; pairs of
REST requests to the canary, which batches a pair at once, and now and then a single one, which
its short deadline turns into a 504; a 400 (wrong shape) and a 404 (unknown model) now and then;
and bursts at the canary larger than its queue (429). Answers are tallied in ``counts``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Final

import grpc

from modelyard_runtime.protocol.pb import inference_pb2 as pb
from modelyard_runtime.protocol.pb import inference_pb2_grpc

ROW: Final = [0.5, 1.0, 1.5, 2.0]


class Traffic:
    """Client load in a background thread until ``stop()``; ``counts`` tallies the answers."""

    def __init__(
        self, addresses: dict[str, str], *, model: str, canary: str, rate: float = 20.0
    ) -> None:
        """``addresses``: pod name -> IP; ``canary``: the canary pod's name."""
        self.addresses = addresses
        self.model = model
        self.canary = canary
        self.rate = rate
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
        self._channels = {pod: grpc.insecure_channel(f"{ip}:8081") for pod, ip in addresses.items()}
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._pool.shutdown(wait=True)
        for channel in self._channels.values():
            channel.close()

    def _tally(self, key: str) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def _run(self) -> None:
        stable = sorted(pod for pod in self.addresses if pod != self.canary)
        # Each stable pod twice for the canary's once (and its pairs): about a third each.
        pods = [*stable, *stable, self.canary]
        for tick in itertools.count():
            if self._stop.wait(1 / self.rate):
                return
            pod = pods[tick % len(pods)]
            canary = pod == self.canary
            if canary and tick % 7 == 0:
                self._submit(self.rest, pod)  # alone: the canary times it out (504)
            elif canary:
                for _ in range(2):  # a pair the canary batches together
                    self._submit(self.rest, pod)
            elif tick % 4 == 1:
                self._submit(self.v1, pod)
            elif tick % 4 == 2:
                self._submit(self.grpc, pod)
            else:
                self._submit(self.rest, pod)
            if tick % 23 == 0:
                self._submit(self.bad_request, pod)
            if tick % 31 == 0:
                self._submit(self.unknown_model, pod)
            if tick % 97 == 0:
                for _ in range(12):  # a burst: more than the canary's queue holds (429)
                    self._submit(self.rest, self.canary)

    def _submit(self, call: Callable[[str], str], pod: str) -> None:
        future = self._pool.submit(call, pod)
        future.add_done_callback(
            lambda done: self._tally(done.result() if not done.exception() else "client error")
        )

    def _post(self, pod: str, path: str, body: dict[str, Any]) -> str:
        request = urllib.request.Request(
            f"http://{self.addresses[pod]}:8080{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return str(response.status)
        except urllib.error.HTTPError as e:
            return str(e.code)

    def rest(self, pod: str) -> str:
        tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW}
        return self._post(pod, f"/v2/models/{self.model}/infer", {"inputs": [tensor]})

    def v1(self, pod: str) -> str:
        return self._post(pod, f"/v1/models/{self.model}:predict", {"instances": [ROW]})

    def bad_request(self, pod: str) -> str:
        tensor = {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": ROW[:3]}
        return self._post(pod, f"/v2/models/{self.model}/infer", {"inputs": [tensor]})

    def unknown_model(self, pod: str) -> str:
        tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW}
        return self._post(pod, "/v2/models/no-such-model/infer", {"inputs": [tensor]})

    def grpc(self, pod: str) -> str:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(self._channels[pod])  # type: ignore[no-untyped-call]
        request = pb.ModelInferRequest(
            model_name=self.model,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="x", datatype="FP32", shape=[1, 4],
                    contents=pb.InferTensorContents(fp32_contents=ROW),
                )
            ],
        )  # fmt: skip
        try:
            stub.ModelInfer(request, timeout=10)
        except grpc.RpcError as e:
            return f"grpc {e.code().name}"
        return "grpc OK"

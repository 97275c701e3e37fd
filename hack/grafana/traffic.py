"""Client traffic for the live setup (``hack.grafana.live``), in a background thread.

Round robin over the pods, which come and go with rollouts (each call takes the pod's IP): REST
v2, TF-Serving v1 and gRPC requests to the stable pods; pairs of REST requests to the canary,
which batches a pair at once, and now and then a single one, which its short deadline turns into
a 504; a 400 (wrong shape) and a 404 (unknown model) now and then; and bursts at the canary
larger than its queue (429). Answers are tallied in ``counts``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Final, Protocol

import grpc

from modelyard_runtime.protocol.pb import inference_pb2 as pb
from modelyard_runtime.protocol.pb import inference_pb2_grpc

ROW: Final = [0.5, 1.0, 1.5, 2.0]


class Served(Protocol):
    """Where the pods are now (``hack.grafana.live.Pods``): they come and go with rollouts."""

    @property
    def addresses(self) -> dict[str, str]:
        """Pod name -> IP."""
        ...

    @property
    def canary(self) -> str:
        """The canary pod's name ("" when there is none)."""
        ...


class Traffic:
    """Client load in a background thread until ``stop()``; ``counts`` tallies the answers."""

    def __init__(self, pods: Served, *, model: str, rate: float = 20.0) -> None:
        self.pods = pods
        self.model = model
        self.rate = rate
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
        self._channels: dict[str, grpc.Channel] = {}  # IP -> channel, made on first use
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    @property
    def addresses(self) -> dict[str, str]:
        return self.pods.addresses

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
        for tick in itertools.count():
            if self._stop.wait(1 / self.rate):
                return
            addresses, canary_pod = dict(self.pods.addresses), self.pods.canary
            stable = sorted(pod for pod in addresses if pod != canary_pod)
            # Each stable pod twice for the canary's once (and its pairs): about a third each.
            pods = [*stable, *stable] + ([canary_pod] if canary_pod in addresses else [])
            if not pods:
                continue
            pod = pods[tick % len(pods)]
            canary = pod == canary_pod
            if canary and tick % 7 == 0:
                self._submit(self.rest, addresses[pod])  # alone: the canary times it out (504)
            elif canary:
                for _ in range(2):  # a pair the canary batches together
                    self._submit(self.rest, addresses[pod])
            elif tick % 4 == 1:
                self._submit(self.v1, addresses[pod])
            elif tick % 4 == 2:
                self._submit(self.grpc, addresses[pod])
            else:
                self._submit(self.rest, addresses[pod])
            if tick % 23 == 0:
                self._submit(self.bad_request, addresses[pod])
            if tick % 31 == 0:
                self._submit(self.unknown_model, addresses[pod])
            if tick % 97 == 0 and canary_pod in addresses:
                for _ in range(12):  # a burst: more than the canary's queue holds (429)
                    self._submit(self.rest, addresses[canary_pod])

    def _submit(self, call: Callable[[str], str], pod: str) -> None:
        future = self._pool.submit(call, pod)
        future.add_done_callback(
            lambda done: self._tally(done.result() if not done.exception() else "client error")
        )

    def _post(self, pod: str, path: str, body: dict[str, Any]) -> str:
        request = urllib.request.Request(
            f"http://{pod}:8080{path}",
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

    def grpc(self, ip: str) -> str:
        channel = self._channels.get(ip)
        if channel is None:
            channel = self._channels[ip] = grpc.insecure_channel(f"{ip}:8081")
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
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

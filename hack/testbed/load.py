"""Steady inference load with kept-alive connections, every request accounted for.

``SteadyLoad`` runs ``clients`` threads; each keeps one HTTP/1.1 connection open (reconnecting
only when the server ends it, e.g. ``Connection: close``) and sends an OIP v2 inference, paced
to ``rate`` requests a second per client. Each request is recorded: when, the status (0 when no
HTTP answer came: a refused or reset connection), which model version answered, and the error.
Used by the canary and autoscaling tests and the demo; traffic goes only where it is pointed
(a Service's ClusterIP on the local node).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from collections import Counter
from typing import Final

ROW: Final = [1.0, 2.0, 3.0, 4.0]  # tiny_model's input


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    started: float  # time.monotonic()
    seconds: float
    status: int  # 0: no HTTP answer
    version: str = ""
    error: str = ""


class SteadyLoad:
    def __init__(
        self,
        host: str,
        port: int,
        model: str,
        *,
        clients: int = 4,
        rate: float = 20.0,
        input_name: str = "x",
        row: list[float] = ROW,
    ) -> None:
        self._host, self._port = host, port
        self._path = f"/v2/models/{model}/infer"
        tensor = {"name": input_name, "shape": [1, len(row)], "datatype": "FP32", "data": row}
        self._body = json.dumps({"inputs": [tensor]}).encode()
        self._clients, self._interval = clients, 1.0 / rate
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.results: list[Result] = []

    def __enter__(self) -> SteadyLoad:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for index in range(self._clients):
            thread = threading.Thread(target=self._client, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _client(self) -> None:
        connection: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=30)
            result, reusable = self._one(connection)
            with self._lock:
                self.results.append(result)
            if not reusable:
                connection.close()
                connection = None
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if connection is not None:
            connection.close()

    def _one(self, connection: http.client.HTTPConnection) -> tuple[Result, bool]:
        started = time.monotonic()
        try:
            connection.request("POST", self._path, body=self._body,
                               headers={"Content-Type": "application/json"})  # fmt: skip
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as e:
            return Result(started, time.monotonic() - started, 0, error=repr(e)), False
        elapsed = time.monotonic() - started
        version, error = "", ""
        try:
            body = json.loads(payload)
            version = str(body.get("model_version", ""))
            error = str(body.get("error", ""))
        except ValueError:
            error = payload[:200].decode(errors="replace")
        reusable = not response.will_close
        return Result(started, elapsed, response.status, version, error), reusable

    # -- what happened ---------------------------------------------------------------------
    def snapshot(self) -> list[Result]:
        with self._lock:
            return list(self.results)

    def failures(self, since: float = 0.0) -> list[Result]:
        return [r for r in self.snapshot() if r.status != 200 and r.started >= since]

    def versions(self, since: float = 0.0) -> Counter[str]:
        return Counter(r.version for r in self.snapshot() if r.status == 200 and r.started >= since)

    def last_answer_from(self, version: str) -> float | None:
        """When the last successful answer of ``version`` arrived (monotonic)."""
        times = [r.started + r.seconds for r in self.snapshot()
                 if r.status == 200 and r.version == version]  # fmt: skip
        return max(times) if times else None

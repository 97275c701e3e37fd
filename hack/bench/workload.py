"""What the runtime benchmark runs: the two models, the request bodies, raw onnxruntime's rate.

Shared by ``hack.bench_runtime`` (the full comparison) and ``hack.bench.targets`` (the
interleaved target runs).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import orjson

from hack.bench.servers.common import session  # the peers' own session settings
from modelyard_runtime.protocol.pb import inference_pb2 as pb

MODELS = {
    "compute": ("compute-bound MLP 512-4096-4096-4096-10", (512, 4096, 4096, 4096, 10), 100.0),
    "overhead": ("overhead-bound MLP 64-512-512-10", (64, 512, 512, 10), 10.0),
}  # key -> (title, layer sizes, p99 SLO in ms)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
Files = dict[str, tuple[Path, int | None]]  # request kind -> (body file, header length)


def raw_rows_per_second(
    path: Path, batch: int, seconds: float, parallel: int = 1, threads: int = 1
) -> float:
    """Rows/s of ``parallel`` sessions (``threads`` each) running ``batch`` rows back to back."""
    counts = [0] * parallel
    width = session(str(path)).get_inputs()[0].shape[1]
    x = np.random.default_rng(0).standard_normal((batch, width)).astype(np.float32)

    def run(index: int) -> None:
        sess = session(str(path), threads)
        for _ in range(3):
            sess.run(None, {"input": x})
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            sess.run(None, {"input": x})
            counts[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(parallel)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) * batch / (time.perf_counter() - started)


def request_files(width: int, workdir: Path) -> Files:
    """One-row request bodies: OIP JSON, OIP binary, gRPC message, BentoML JSON."""
    row = np.random.default_rng(1).standard_normal((1, width)).astype(np.float32)
    data = row.ravel().tolist()
    files: Files = {}
    tensor = {"name": "input", "shape": [1, width], "datatype": "FP32"}
    (workdir / "json").write_bytes(orjson.dumps({"inputs": [{**tensor, "data": data}]}))
    files["json"] = (workdir / "json", None)
    header = orjson.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": row.nbytes}}],
            "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
        }
    )
    (workdir / "binary").write_bytes(header + row.tobytes())
    files["binary"] = (workdir / "binary", len(header))
    message = pb.ModelInferRequest(model_name="mlp")
    message.inputs.add(name="input", datatype="FP32", shape=[1, width])
    message.raw_input_contents.append(row.tobytes())
    (workdir / "grpc").write_bytes(message.SerializeToString())
    files["grpc"] = (workdir / "grpc", None)
    (workdir / "bentoml").write_bytes(orjson.dumps({"input": row.tolist()}))
    files["bentoml"] = (workdir / "bentoml", None)
    return files


Raw = dict[int, dict[int, float]]  # intra-op threads -> batch -> rows/s (one session)


def raw_best(raw: Raw) -> tuple[float, int, int]:
    """(rows/s, batch, threads) of the best raw point over every thread count."""
    return max(
        (rate, batch, threads) for threads, row in raw.items() for batch, rate in row.items()
    )

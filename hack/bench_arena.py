"""onnxruntime's CPU memory arena: the RSS a huge batch leaves behind, and the normal path's
latency, with and without it (``--cpu-memory-arena``); numbers quoted in docs/runtime.md.

    python -m hack.bench_arena

Each configuration runs in its own process (RSS is per process): a 64-512-512-10 MLP loaded as
the server loads it (``session.onnx.load``, one intra-op thread), batch 1 and 64 timed in CPU time
per run, then one batch of 200,000 rows and the RSS after it. Interleaved rounds; medians.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 200_000
ROUNDS = 5


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(model: Path, arena: bool) -> None:
    """In the child: print 'rss_before rss_after lat1_us lat64_us'."""
    from modelyard_runtime.session import onnx

    session = onnx.load(model, execution_provider="cpu", intra_op_threads=1, memory_arena=arena)

    def latency(rows: int, count: int) -> float:
        feeds = {"input": np.random.default_rng(0).random((rows, 64), dtype=np.float32)}
        session.run(feeds)
        started = time.process_time()  # CPU time: the shared machine's load distorts wall time
        for _ in range(count):
            session.run(feeds)
        return (time.process_time() - started) / count * 1e6

    lat1, lat64 = latency(1, 2000), latency(64, 300)
    before = rss_mib()
    session.run({"input": np.ones((ROWS, 64), dtype=np.float32)})
    print(before, rss_mib(), lat1, lat64)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        measure(Path(sys.argv[2]), sys.argv[3] == "true")
        return 0
    from hack.testbed import onnx_models

    with tempfile.TemporaryDirectory() as tmp:
        model = onnx_models.mlp_model(Path(tmp) / "mlp.onnx", (64, 512, 512, 10))
        results: dict[bool, list[list[float]]] = {True: [], False: []}
        for _ in range(ROUNDS):
            for arena in (True, False):
                out = subprocess.run(
                    [sys.executable, "-m", "hack.bench_arena", "--child", str(model),
                     "true" if arena else "false"],
                    check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                results[arena].append([float(v) for v in out.split()])
    batch = f"RSS after one {ROWS:,}-row batch"
    print(f"| CPU arena | RSS before | {batch} | CPU per batch of 1 | of 64 |")
    print("|---|---|---|---|---|")
    for arena in (True, False):
        columns = list(zip(*results[arena], strict=True))
        before, after, lat1, lat64 = (statistics.median(c) for c in columns)
        print(
            f"| {'on' if arena else 'off (default)'} | {before:.0f} MiB | {after:.0f} MiB | "
            f"{lat1:.0f} µs | {lat64:.0f} µs |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

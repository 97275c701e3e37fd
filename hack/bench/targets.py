"""The two no-flag targets (design §8), measured as interleaved runs: A B A B on one machine.

- overhead-bound model, c=8, JSON: modelyard with no tuning flags against the naive
  aiohttp+orjson server (target ≥ 1.2 x);
- compute-bound model, c=64, JSON: modelyard with no tuning flags against raw onnxruntime's
  best rows/s at any thread count (batch 32, 64 and 128), probed between the server's runs
  (target ≥ 0.75 x).

Each round runs the pair back to back, so the drift of a shared machine hits both alike; the
report gives every round and the median of the per-round ratios. Run by
``python -m hack.bench_runtime --targets``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
from pathlib import Path

from hack.bench import load, peers
from hack.bench.workload import MODELS, raw_rows_per_second, request_files
from hack.testbed import onnx_models

PROBE_BATCHES = (32, 64, 128)
OVERHEAD_TARGET, COMPUTE_TARGET = 1.2, 0.75


@dataclasses.dataclass(frozen=True)
class Round:
    defaults_small: float  # overhead-bound, c=8, req/s
    naive: float
    defaults_large: float  # compute-bound, c=64, req/s (one row each)
    raw: float  # best raw rows/s
    raw_point: str  # "batch B, T threads"

    @property
    def overhead_ratio(self) -> float:
        return self.defaults_small / self.naive

    @property
    def compute_ratio(self) -> float:
        return self.defaults_large / self.raw


class Server:
    """A peer's server process, started once and left idle between its runs."""

    def __init__(self, peer: peers.Peer, model: Path, workdir: Path) -> None:
        self.launch = peer.launch(peers.venv_python(peer.venv), model, workdir)
        self.infer = self.launch.http + peer.infer_path
        self._log = (workdir / f"{peer.name.replace(' ', '_')}.log").open("wb")
        self._process = subprocess.Popen(
            self.launch.argv,
            cwd=self.launch.cwd,
            env={**os.environ, **self.launch.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        peers.wait_ready(self.launch.http + peer.ready_path, self._process)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


def raw_probe(model: Path, seconds: float) -> tuple[float, str]:
    """Raw onnxruntime's best rows/s over thread counts 1..CPUs and ``PROBE_BATCHES``."""
    points = [
        (raw_rows_per_second(model, batch, seconds, threads=threads), batch, threads)
        for threads in range(1, (os.cpu_count() or 1) + 1)
        for batch in PROBE_BATCHES
    ]
    rate, batch, threads = max(points)
    return rate, f"batch {batch}, {threads} thread{'s' * (threads > 1)}"


def measure(workdir: Path, rounds: int, seconds: float) -> list[Round]:
    by_name = {peer.name: peer for peer in peers.PEERS}
    paths, bodies = {}, {}
    for key in ("overhead", "compute"):
        _, sizes, _ = MODELS[key]
        (workdir / key).mkdir()
        paths[key] = onnx_models.mlp_model(workdir / f"{key}.onnx", sizes)
        bodies[key] = request_files(sizes[0], workdir / key)["json"][0]
    started = [
        Server(by_name["modelyard defaults"], paths["overhead"], workdir),
        Server(by_name["naive aiohttp+orjson"], paths["overhead"], workdir),
        Server(by_name["modelyard defaults"], paths["compute"], workdir),
    ]
    small, naive, large = started
    results = []
    try:
        for server, key, concurrency in ((small, "overhead", 8), (naive, "overhead", 8),
                                         (large, "compute", 64)):  # fmt: skip
            load.wrk(server.infer, bodies[key], None, concurrency, 3)  # warm-up
        for index in range(rounds):
            defaults_small = load.wrk(small.infer, bodies["overhead"], None, 8, seconds).rps
            naive_rps = load.wrk(naive.infer, bodies["overhead"], None, 8, seconds).rps
            defaults_large = load.wrk(large.infer, bodies["compute"], None, 64, seconds).rps
            raw, point = raw_probe(paths["compute"], seconds / 5)
            run = Round(defaults_small, naive_rps, defaults_large, raw, point)
            results.append(run)
            print(
                f"  round {index + 1}: overhead c=8 {run.defaults_small:,.0f} vs naive "
                f"{run.naive:,.0f} ({run.overhead_ratio:.2f}); compute c=64 "
                f"{run.defaults_large:,.0f} vs raw {run.raw:,.0f} at {run.raw_point} "
                f"({run.compute_ratio:.2f})",
                flush=True,
            )
    finally:
        for server in started:
            server.stop()
    return results


def section(results: list[Round], command: str, date: str) -> str:
    overhead = statistics.median(r.overhead_ratio for r in results)
    compute = statistics.median(r.compute_ratio for r in results)
    lines = [
        "## Runtime defaults: the targets, interleaved",
        "",
        f"Measured {date} on {os.cpu_count()} shared vCPUs with `{command}`. Each round runs, "
        "back to back: modelyard with no tuning flags and the naive aiohttp+orjson server on the "
        "overhead-bound model at c=8 (JSON, wrk); modelyard with no tuning flags on the "
        "compute-bound model at c=64 (JSON); raw onnxruntime on the compute-bound model at every "
        "thread count and batch 32/64/128, its best point. Requests carry one row each.",
        "",
        "| round | overhead c=8: defaults req/s | naive req/s | ratio | compute c=64: defaults "
        "req/s | raw best rows/s (where) | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, r in enumerate(results, 1):
        lines.append(
            f"| {index} | {r.defaults_small:,.0f} | {r.naive:,.0f} | {r.overhead_ratio:.2f} | "
            f"{r.defaults_large:,.0f} | {r.raw:,.0f} ({r.raw_point}) | {r.compute_ratio:.2f} |"
        )
    lines += [
        "",
        "| target (no flags) | median of the rounds | met |",
        "|---|---|---|",
        f"| overhead-bound, c=8, ≥ {OVERHEAD_TARGET} x naive | {overhead:.2f} | "
        f"{'yes' if overhead >= OVERHEAD_TARGET else 'no'} |",
        f"| compute-bound, c=64, ≥ {COMPUTE_TARGET} x raw best (any thread count) | "
        f"{compute:.2f} | {'yes' if compute >= COMPUTE_TARGET else 'no'} |",
        "",
    ]
    return "\n".join(lines)

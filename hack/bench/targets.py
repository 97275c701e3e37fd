"""The two no-flag targets (design §8), measured as interleaved runs on one shared machine.

- overhead-bound model, c=8, JSON: modelyard with no tuning flags against the naive
  aiohttp+orjson server (target >= 1.2 x);
- compute-bound model, c=64, JSON: modelyard with no tuning flags against raw onnxruntime at its
  best point (target >= 0.75 x). The best point (thread count 1..CPUs, batch 32/64/128) comes
  from a sweep first, each point measured twice and its median kept; the rounds then measure raw
  at that point for as long as the server runs, so neither side is a best-of-many.

Each round runs both pairs back to back, in alternating order (A B, then B A), so the drift of a
shared machine hits both sides alike; the report gives every round and the median of the
per-round ratios. Run by ``python -m hack.bench_runtime --targets``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

from hack.bench import load, peers
from hack.bench.machine import QUIET_CPUS, other_cpus, settle
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
    others: float  # CPUs busy with other work than this benchmark, on average over the round

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


def best_raw_point(model: Path, seconds: float, quiet_wait: float) -> tuple[int, int]:
    """(threads, batch) where raw onnxruntime is fastest: the median of two sweeps per point,
    each point after waiting up to ``quiet_wait`` seconds for a quiet machine."""
    points = [
        (threads, batch)
        for threads in range(1, (os.cpu_count() or 1) + 1)
        for batch in PROBE_BATCHES
    ]
    rates: dict[tuple[int, int], list[float]] = {point: [] for point in points}
    for sweep in range(2):
        for threads, batch in points if sweep == 0 else reversed(points):
            if quiet_wait:
                settle(quiet_wait)
            rate = raw_rows_per_second(model, batch, seconds, threads=threads)
            rates[(threads, batch)].append(rate)
    best = max(points, key=lambda point: statistics.median(rates[point]))
    print(
        "  raw sweep: "
        + ", ".join(f"{t}t b{b} {statistics.median(r):,.0f}" for (t, b), r in rates.items()),
        flush=True,
    )
    return best


def _run_all(runs: dict[str, Callable[[], float]], order: list[str]) -> dict[str, float]:
    return {name: runs[name]() for name in order}


def measure(workdir: Path, rounds: int, seconds: float, quiet_wait: float = 0.0) -> list[Round]:
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
        threads, batch = best_raw_point(paths["compute"], 3.0, quiet_wait)
        point = f"batch {batch}, {threads} thread{'s' * (threads > 1)}"

        runs: dict[str, Callable[[], float]] = {
            "defaults_small": lambda: (
                load.wrk(small.infer, bodies["overhead"], None, 8, seconds).rps
            ),
            "naive": lambda: load.wrk(naive.infer, bodies["overhead"], None, 8, seconds).rps,
            "defaults_large": lambda: (
                load.wrk(large.infer, bodies["compute"], None, 64, seconds).rps
            ),
            "raw": lambda: raw_rows_per_second(paths["compute"], batch, seconds, threads=threads),
        }
        for index in range(rounds):
            if quiet_wait:
                settle(quiet_wait)
            order = list(runs) if index % 2 == 0 else list(reversed(runs))  # A B, then B A
            got, others = other_cpus(functools.partial(_run_all, runs, order))
            run = Round(
                got["defaults_small"],
                got["naive"],
                got["defaults_large"],
                got["raw"],
                point,
                others,
            )
            results.append(run)
            print(
                f"  round {index + 1}: overhead c=8 {run.defaults_small:,.0f} vs naive "
                f"{run.naive:,.0f} ({run.overhead_ratio:.2f}); compute c=64 "
                f"{run.defaults_large:,.0f} vs raw {run.raw:,.0f} at {run.raw_point} "
                f"({run.compute_ratio:.2f}); others' load {run.others:.2f} CPUs",
                flush=True,
            )
    finally:
        for server in started:
            server.stop()
    return results


def section(results: list[Round], command: str, date: str) -> str:
    quiet = [r for r in results if r.others < QUIET_CPUS]
    lines = [
        "## Runtime defaults: the targets, interleaved",
        "",
        f"Measured {date} on {os.cpu_count()} shared vCPUs with `{command}`. Each round runs, "
        "back to back (in alternating order): modelyard with no tuning flags and the naive "
        "aiohttp+orjson server on the overhead-bound model at c=8 (JSON, wrk); modelyard with no "
        "tuning flags on the compute-bound model at c=64 (JSON) and raw onnxruntime at its best "
        "point, chosen first by a sweep over thread counts 1..CPUs and batch 32/64/128 (median "
        "of two passes). Every run lasts as long as its pair's. Requests carry one row each. The "
        "last column is the CPU the machine spent on other work meanwhile (other sessions share "
        "it): a server built to use every core cannot show it while another process holds one.",
        "",
        "| round | overhead c=8: defaults req/s | naive req/s | ratio | compute c=64: defaults "
        "req/s | raw best rows/s (where) | ratio | other work on the machine (CPUs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, r in enumerate(results, 1):
        lines.append(
            f"| {index} | {r.defaults_small:,.0f} | {r.naive:,.0f} | {r.overhead_ratio:.2f} | "
            f"{r.defaults_large:,.0f} | {r.raw:,.0f} ({r.raw_point}) | {r.compute_ratio:.2f} | "
            f"{r.others:.2f} |"
        )
    header = "| target (no flags) | median, every round |"
    if quiet:
        header += f" median, the {len(quiet)} rounds with under {QUIET_CPUS} CPUs of other work |"
    lines += ["", header, "|---|---|" + ("---|" if quiet else "")]
    for name, target, ratio in (
        (f"overhead-bound, c=8, ≥ {OVERHEAD_TARGET} x naive", OVERHEAD_TARGET, "overhead_ratio"),
        (
            f"compute-bound, c=64, ≥ {COMPUTE_TARGET} x raw best (any thread count)",
            COMPUTE_TARGET,
            "compute_ratio",
        ),
    ):
        cells = [statistics.median(getattr(r, ratio) for r in group) for group in (results, quiet)
                 if group]  # fmt: skip
        lines.append(
            f"| {name} | "
            + " | ".join(f"{c:.2f} ({'met' if c >= target else 'not met'})" for c in cells)
            + " |"
        )
    return "\n".join(lines) + "\n"

"""Runtime benchmark: raw onnxruntime vs ``modelyard-runtime serve`` on the same machine and run.

For each model (compute-bound MLP 512-4096-4096-4096-10, overhead-bound MLP 64-512-512-10) it
measures raw ``InferenceSession.run`` rows/s at batch 1..128 with the server's thread settings,
then the server under wrk (one row a request; JSON and binary-tensor bodies) at several
concurrencies, and writes a Markdown report. Numbers, not a test: it never fails on timing.

    python -m hack.bench_runtime --out BENCHMARKS.md [--duration 10] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson
from tests import factories
from tests.support.processes import RuntimeProcess

HERE = Path(__file__).resolve().parent
LUA = HERE / "bench" / "post.lua"
RESULT = re.compile(r"RESULT rps=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) errors=(\d+)")
MODELS = {
    "compute-bound MLP 512-4096-4096-4096-10": (512, 4096, 4096, 4096, 10),
    "overhead-bound MLP 64-512-512-10": (64, 512, 512, 10),
}
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclasses.dataclass(frozen=True)
class Load:
    encoding: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def raw_throughput(path: Path, batch: int, seconds: float, threads: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    width = session.get_inputs()[0].shape[1]
    x = np.random.default_rng(0).standard_normal((batch, width)).astype(np.float32)
    for _ in range(3):
        session.run(None, {name: x})
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        session.run(None, {name: x})
        runs += 1
    return runs * batch / elapsed


def bodies(width: int, workdir: Path) -> dict[str, tuple[Path, int | None]]:
    row = np.random.default_rng(1).standard_normal((1, width)).astype(np.float32)
    json_path = workdir / f"body-{width}.json"
    json_path.write_bytes(
        orjson.dumps(
            {"inputs": [{"name": "input", "shape": [1, width], "datatype": "FP32",
                         "data": row.ravel().tolist()}]}
        )
    )  # fmt: skip
    header = orjson.dumps(
        {
            "inputs": [{"name": "input", "shape": [1, width], "datatype": "FP32",
                        "parameters": {"binary_data_size": row.nbytes}}],
            "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
        }
    )  # fmt: skip
    binary_path = workdir / f"body-{width}.bin"
    binary_path.write_bytes(header + row.tobytes())
    return {"json": (json_path, None), "binary": (binary_path, len(header))}


def wrk(url: str, body: Path, header_length: int | None, connections: int, seconds: float) -> Load:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(LUA)]
    args += [url, "--", str(body)] + ([str(header_length)] if header_length is not None else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True)
    match = RESULT.search(out.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out.stdout}\n{out.stderr}")
    rps, p50, p99, errors = match.groups()
    return Load("", connections, float(rps), float(p50), float(p99), int(errors))


def serve_and_load(
    path: Path, width: int, workdir: Path, concurrencies: tuple[int, ...], seconds: float,
    max_batch: int,
) -> list[Load]:  # fmt: skip
    process = RuntimeProcess(
        [
            "--model", str(path), "--name", "mlp", "--host", "127.0.0.1", "--http-port", "0",
            "--execution-provider", "cpu", "--intra-op-threads", "1",
            "--max-batch-size", str(max_batch), "--warmup", f"1,{max_batch}",
            "--max-queue-size", "4096",
        ]
    )  # fmt: skip
    results = []
    try:
        url = process.wait_ready(120) + "/v2/models/mlp/infer"
        for encoding, (body, header_length) in bodies(width, workdir).items():
            wrk(url, body, header_length, 8, 2)  # warm-up
            for connections in concurrencies:
                load = wrk(url, body, header_length, connections, seconds)
                results.append(dataclasses.replace(load, encoding=encoding))
                print(
                    f"  server {encoding} c={connections}: {load.rps:.0f} rps p50 "
                    f"{load.p50_ms:.2f} ms p99 {load.p99_ms:.2f} ms errors {load.errors}"
                )
    finally:
        process.terminate()
        process.wait(60)
    return results


def report(sections: list[str], args: argparse.Namespace) -> str:
    cpu = platform.processor() or platform.machine()
    model_name = ""
    with Path("/proc/cpuinfo").open() as f:
        for line in f:
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    head = [
        "## Runtime: raw onnxruntime vs modelyard-runtime",
        "",
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} vCPU "
        f"({model_name or cpu}), onnxruntime {ort.__version__}, intra-op threads 1 for both "
        "the raw session and the server; server and wrk (`-t1`) share the cores, unpinned. "
        "One row per request; wrk is closed-loop, so p99 at saturation is optimistic.",
        "",
        f"Command: `python -m hack.bench_runtime --duration {args.duration:g}"
        + (" --quick" if args.quick else "") + "` (`make bench-runtime`).",
        "",
    ]  # fmt: skip
    return "\n".join(head + sections) + "\n"


def bench_model(title: str, sizes: tuple[int, ...], workdir: Path, args: argparse.Namespace) -> str:
    print(f"{title}")
    path = factories.mlp_model(workdir / f"mlp-{sizes[0]}.onnx", sizes)
    batches = BATCHES[:4] if args.quick else BATCHES
    raw = {b: raw_throughput(path, b, 1.0 if args.quick else 3.0, 1) for b in batches}
    for b, rows in raw.items():
        print(f"  raw batch {b}: {rows:.0f} rows/s")
    best_batch = max(raw, key=lambda b: raw[b])
    best = raw[best_batch]
    concurrencies = (1, 8) if args.quick else (1, 8, 64)
    loads = serve_and_load(
        path, sizes[0], workdir, concurrencies, args.duration, max(64, best_batch)
    )
    single_ms = 1000 / raw[1]
    lines = [
        f"### {title}",
        "",
        "| raw batch | " + " | ".join(str(b) for b in batches) + " |",
        "|---|" + "---|" * len(batches),
        "| rows/s | " + " | ".join(f"{raw[b]:,.0f}" for b in batches) + " |",
        "",
        f"Raw best: {best:,.0f} rows/s at batch {best_batch}; raw single inference "
        f"{single_ms:.3f} ms.",
        "",
        "| server | concurrency | req/s | ratio to raw best | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for load in loads:
        lines.append(
            f"| {load.encoding} | {load.concurrency} | {load.rps:,.0f} | {load.rps / best:.2f} "
            f"| {load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.errors} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk point")
    parser.add_argument("--quick", action="store_true", help="fewer points (smoke run)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        sections = [bench_model(title, sizes, Path(tmp), args) for title, sizes in MODELS.items()]
    text = report(sections, args)
    marker = "## Runtime: raw onnxruntime vs modelyard-runtime"
    existing = args.out.read_text() if args.out.exists() else "# Benchmarks\n\n"
    if marker in existing:
        before, _, rest = existing.partition(marker)
        after = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        existing = before + text + ("\n" + after if after else "")
    else:
        existing = existing.rstrip("\n") + "\n\n" + text
    args.out.write_text(existing)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Runtime benchmark: modelyard vs raw onnxruntime vs the servers a user would pick instead.

One run, one machine, the same two models (compute-bound MLP 512-4096-4096-4096-10,
overhead-bound MLP 64-512-512-10), one row a request:

1. raw ``InferenceSession.run`` rows/s at batch 1..128, with 1..N intra-op threads (N = the
   CPUs), and two single-threaded sessions in parallel;
2. modelyard with no tuning flags ("modelyard defaults": processes and threads from the CPUs);
3. modelyard REST JSON, REST binary and gRPC with one onnxruntime thread (one process; 2
   inference workers; 2 server processes);
4. naive aiohttp+orjson and naive FastAPI servers (one thread);
5. KServe, MLServer, PyTriton and BentoML, each from its own virtualenv (one thread).

HTTP load comes from wrk, gRPC load from ghz, both closed-loop. The script writes a Markdown
report and a PNG chart. Numbers, not a test: it never fails on timing. ``--targets`` measures
the two no-flag targets instead, as interleaved runs (``hack.bench.targets``).

    python -m hack.bench_runtime --out BENCHMARKS.md            # everything (~25 min)
    python -m hack.bench_runtime --targets --out BENCHMARKS.md  # the targets, A B A B (~10 min)
    python -m hack.bench_runtime --smoke --out /tmp/b.md        # seconds: modelyard + one peer
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson

from hack.bench import load, peers, targets
from hack.bench.machine import other_cpus
from hack.bench.peers import wait_ready
from hack.bench.report import update_report
from hack.bench.servers.common import session  # the peers' own session settings
from hack.bench.workload import (
    BATCHES,
    MODELS,
    Files,
    Raw,
    raw_best,
    raw_rows_per_second,
    request_files,
)
from hack.testbed import onnx_models

PROTO = (
    Path(__file__).resolve().parents[1] / "runtime/modelyard_runtime/protocol/pb/inference.proto"
)
GHZ_VERSION = "v0.121.0"


@dataclasses.dataclass(frozen=True)
class Row:
    model: str
    server: str
    concurrency: int
    result: load.Load


def check_output(peer: peers.Peer, base: str, files: Files, expected: np.ndarray) -> None:
    """One request through the peer's JSON path; its output must match a direct session run."""
    kind = "bentoml" if "bentoml" in peer.kinds else "json"
    request = urllib.request.Request(
        base + peer.infer_path,
        data=files[kind][0].read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = orjson.loads(response.read())
    got = np.asarray(reply if kind == "bentoml" else reply["outputs"][0]["data"], np.float32)
    if not np.allclose(got.ravel(), expected.ravel(), rtol=1e-4, atol=1e-5):
        raise RuntimeError(
            f"{peer.name} answered {got.ravel()[:4]}, expected {expected.ravel()[:4]}"
        )


def measure_peer(
    peer: peers.Peer,
    model: Path,
    workdir: Path,
    files: Files,
    concurrencies: tuple[int, ...],
    seconds: float,
    ghz_bin: Path | None,
    expected: np.ndarray,
) -> list[tuple[str, int, load.Load]]:
    python = peers.venv_python(peer.venv)
    launch = peer.launch(python, model, workdir)
    log = (workdir / f"{peer.name.replace(' ', '_')}.log").open("wb")
    process = subprocess.Popen(
        launch.argv,
        cwd=launch.cwd,
        env={**os.environ, **launch.env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    results = []
    try:
        wait_ready(launch.http + peer.ready_path, process)
        check_output(peer, launch.http, files, expected)
        for kind in peer.kinds:
            label = peer.name if len(peer.kinds) == 1 else f"{peer.name} ({kind})"
            if kind == "grpc" and ghz_bin is None:
                continue
            for concurrency in concurrencies:
                if concurrency == concurrencies[0]:
                    run_load(kind, peer, launch, files, ghz_bin, 8, 2)  # warm-up
                result, others = other_cpus(
                    functools.partial(
                        run_load, kind, peer, launch, files, ghz_bin, concurrency, seconds
                    )
                )
                result = dataclasses.replace(result, others=others)
                results.append((label, concurrency, result))
                print(
                    f"  {label:32} c={concurrency:<3} {result.rps:9.0f} rps"
                    f"  p50 {result.p50_ms:7.2f}  p99 {result.p99_ms:7.2f} ms"
                    f"  errors {result.errors}",
                    flush=True,
                )
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    return results


def run_load(
    kind: str,
    peer: peers.Peer,
    launch: peers.Launch,
    files: Files,
    ghz_bin: Path | None,
    concurrency: int,
    seconds: float,
) -> load.Load:
    if kind == "grpc":
        assert ghz_bin is not None
        return load.ghz(ghz_bin, launch.grpc, PROTO, files["grpc"][0], concurrency, seconds)
    body, header = files[kind]
    return load.wrk(launch.http + peer.infer_path, body, header, concurrency, seconds)


def ghz_binary() -> Path | None:
    found = shutil.which("ghz")
    if found:
        return Path(found)
    cached = peers.CACHE / "bin" / "ghz"
    if not cached.exists():
        print(f"building ghz {GHZ_VERSION} into {cached.parent} (once)", flush=True)
        env = {**os.environ, "GOBIN": str(cached.parent), "GOFLAGS": ""}
        subprocess.run(
            ["go", "install", f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}"], env=env, check=True
        )
    return cached


def slo_throughput(rows: list[Row], slo_ms: float) -> float:
    """The highest rps among sweep points with p99 within the SLO and no errors."""
    ok = [r.result.rps for r in rows if r.result.p99_ms <= slo_ms and r.result.errors == 0]
    return max(ok, default=0.0)


def raw_lines(raw: Raw, raw_parallel: float) -> list[str]:
    batches = list(next(iter(raw.values())))
    best, best_batch, best_threads = raw_best(raw)
    single = raw[1]
    return [
        "| raw batch | " + " | ".join(map(str, batches)) + " |",
        "|---|" + "---|" * len(batches),
        *(
            f"| rows/s (1 session, {threads} thread{'s' * (threads > 1)}) | "
            + " | ".join(f"{row[b]:,.0f}" for b in batches)
            + " |"
            for threads, row in raw.items()
        ),
        "",
        f"Raw best: **{best:,.0f} rows/s** at batch {best_batch} with {best_threads} "
        f"thread{'s' * (best_threads > 1)} (one thread: {max(single.values()):,.0f} at batch "
        f"{max(single, key=lambda b: single[b])}; two one-thread sessions in parallel: "
        f"{raw_parallel:,.0f}). Raw single inference, one thread: {1000 / single[1]:.3f} ms.",
        "",
    ]


def model_section(
    key: str, raw: Raw, raw_parallel: float, rows: list[Row], concurrencies: tuple[int, ...]
) -> str:
    title, _, slo = MODELS[key]
    best = raw_best(raw)[0]
    lines = [f"### {title}", "", *raw_lines(raw, raw_parallel)]
    header = "| server | " + " | ".join(f"c={c} rps (p50/p99 ms)" for c in concurrencies)
    lines += [
        header + f" | c={concurrencies[-1]} / raw best | rps at p99 ≤ {slo:g} ms | other work "
        "(CPUs) |",
        "|---|" + "---|" * (len(concurrencies) + 3),
    ]
    servers = list(dict.fromkeys(r.server for r in rows))
    for server in servers:
        mine = {r.concurrency: r.result for r in rows if r.server == server}
        cells = [
            f"{m.rps:,.0f} ({m.p50_ms:.2f}/{m.p99_ms:.2f})"
            + (f" {m.errors} err" if m.errors else "")
            for m in (mine[c] for c in concurrencies)
        ]
        top = mine[concurrencies[-1]].rps / best
        slo_rps = slo_throughput([r for r in rows if r.server == server], slo)
        others = sum(m.others for m in mine.values()) / len(mine)
        lines.append(
            f"| {server} | " + " | ".join(cells) + f" | {top:.2f} | {slo_rps:,.0f} | {others:.2f} |"
        )
    return "\n".join(lines) + "\n"


def chart(results: dict[str, list[Row]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5))
    palette = plt.get_cmap("tab20")
    colors = [palette(i) for i in range(20)]
    for axis, (key, rows) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for index, server in enumerate(dict.fromkeys(r.server for r in rows)):
            points = sorted((r.concurrency, r.result.rps) for r in rows if r.server == server)
            ours = server.startswith("modelyard")
            axis.plot(
                *zip(*points, strict=True), marker="o", label=server, color=colors[index % 20],
                linestyle="-" if ours else "--", linewidth=2.2 if ours else 1.2,
            )  # fmt: skip
        axis.set(
            title=MODELS[key][0],
            xlabel="concurrency (closed loop)",
            ylabel="requests/s",
            xscale="log",
            yscale="log",
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--chart", type=Path, default=None, help="PNG path (default: beside --out)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load point")
    parser.add_argument("--smoke", action="store_true", help="overhead model, modelyard + 1 peer")
    parser.add_argument(
        "--targets", action="store_true", help="only the no-flag targets, as interleaved runs"
    )
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (--targets)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each --targets round, wait up to this many seconds for a quiet machine",
    )
    parser.add_argument("--peers", default="", help="comma-separated subset of peer names")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    if args.targets:
        command = f"python -m hack.bench_runtime --targets --rounds {args.rounds}"
        if args.quiet_wait:
            command += f" --quiet-wait {args.quiet_wait:g}"
        with tempfile.TemporaryDirectory() as tmp:
            rounds = targets.measure(Path(tmp), args.rounds, 6.0, args.quiet_wait)
        text = targets.section(rounds, command, datetime.date.today().isoformat())
        update_report(args.out, text, text.split("\n", 1)[0])
        print(f"wrote {args.out}")
        return
    keys: tuple[str, ...]
    concurrencies: tuple[int, ...]
    if args.smoke:
        keys, concurrencies, seconds = ("overhead",), (1, 8), 2.0
        smoke = ("modelyard defaults", "modelyard", "naive aiohttp+orjson")
        chosen = [p for p in peers.PEERS if p.name in smoke]
        ghz_bin = None
    else:
        keys, concurrencies, seconds = tuple(MODELS), (1, 8, 32, 64), args.duration
        wanted = {name.strip() for name in args.peers.split(",") if name.strip()}
        chosen = [p for p in peers.PEERS if not wanted or p.name in wanted]
        ghz_bin = ghz_binary()
    sections, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for key in keys:
            title, sizes, _ = MODELS[key]
            print(title, flush=True)
            path = onnx_models.mlp_model(workdir / f"{key}.onnx", sizes)
            batches = (1, 8, 64) if args.smoke else BATCHES
            seconds_raw = 1.0 if args.smoke else 3.0
            raw: Raw = {}
            for threads in range(1, (os.cpu_count() or 1) + 1):
                raw[threads] = {
                    b: raw_rows_per_second(path, b, seconds_raw, threads=threads) for b in batches
                }
                rates = ", ".join(f"b{b} {v:,.0f}" for b, v in raw[threads].items())
                print(f"  raw rows/s, {threads} thread(s): {rates}", flush=True)
            best_batch = max(raw[1], key=lambda b: raw[1][b])
            parallel = raw_rows_per_second(path, best_batch, seconds_raw, 2)
            files = request_files(sizes[0], workdir)
            x = np.frombuffer(
                files["binary"][0].read_bytes()[files["binary"][1] or 0 :], np.float32
            )
            expected = session(str(path)).run(None, {"input": x.reshape(1, -1)})[0]
            rows, failures = [], []
            for peer in chosen:
                try:
                    measured = measure_peer(
                        peer, path, workdir, files, concurrencies, seconds, ghz_bin, expected
                    )
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    log = workdir / f"{peer.name.replace(' ', '_')}.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    print(f"  {peer.name} FAILED: {e}\n{tail}", flush=True)
                    failures.append(f"- {peer.name}: not measured ({e})")
                    continue
                rows += [Row(key, label, c, result) for label, c, result in measured]
            results[key] = rows
            section = model_section(key, raw, parallel, rows, concurrencies)
            sections.append(section + ("\n" + "\n".join(failures) + "\n" if failures else ""))
    chart_path = args.chart or args.out.with_name(args.out.stem.lower() + "-runtime.png")
    chart(results, chart_path)
    command = "python -m hack.bench_runtime" + (" --smoke" if args.smoke else "")
    head = [
        "## Runtime: modelyard vs raw onnxruntime vs peers",
        "",
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} shared vCPUs, "
        f"onnxruntime {ort.__version__}. Every server runs one intra-op thread per session, "
        'except "modelyard defaults", which runs with no tuning flag (processes and threads '
        "from the CPUs, as a user gets it); raw onnxruntime is measured at every thread count "
        'and "raw best" is its best point at any of them. Servers and the load generator '
        "(wrk `-t1` for HTTP, ghz for gRPC, closed loop) share the cores, unpinned; one row per "
        "request. Each cell: requests/s (p50/p99 ms). Command: "
        f"`{command}` (`make bench-runtime`). Chart: `{chart_path.name}`.",
        "",
    ]
    update_report(args.out, "\n".join(head) + "\n" + "\n".join(sections), head[0])
    print(f"wrote {args.out} and {chart_path}")


if __name__ == "__main__":
    main()

"""Load generators for the runtime benchmark: wrk (HTTP, with a Lua POST script) and ghz (gRPC).

Both are closed-loop at a fixed concurrency, pinned the same way for every server, and return
one ``Load`` (rps, p50, p99, errors). Neither is written in Python.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUA = HERE / "post.lua"
RESULT = re.compile(r"RESULT rps=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) errors=(\d+)")


@dataclasses.dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    others: float = 0.0  # CPUs other work on the machine used meanwhile (machine.other_cpus)


def wrk(url: str, body: Path, header_length: int | None, connections: int, seconds: float) -> Load:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(LUA)]
    args += [url, "--", str(body)] + ([str(header_length)] if header_length is not None else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True)
    match = RESULT.search(out.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out.stdout}\n{out.stderr}")
    rps, p50, p99, errors = match.groups()
    return Load(float(rps), float(p50), float(p99), int(errors))


def ghz(
    ghz_bin: Path, address: str, proto: Path, message: Path, concurrency: int, seconds: float
) -> Load:
    args = [
        str(ghz_bin), "--insecure", "--proto", str(proto),
        "--call", "inference.GRPCInferenceService.ModelInfer", "-B", str(message),
        "-c", str(concurrency), "--connections", "1", "-z", f"{seconds:g}s", "-O", "json", address,
    ]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True)
    report = json.loads(out.stdout)
    latencies = {p["percentage"]: p["latency"] / 1e6 for p in report["latencyDistribution"] or []}
    codes = report.get("statusCodeDistribution") or {}
    # When the duration ends, ghz closes its connection under the calls still in flight (one per
    # concurrent worker): client-side, not server errors.
    closed = sum(
        count
        for message, count in (report.get("errorDistribution") or {}).items()
        if "use of closed network connection" in message or "Canceled" in message
    )
    errors = sum(count for code, count in codes.items() if code != "OK") - closed
    return Load(float(report["rps"]), latencies.get(50, 0.0), latencies.get(99, 0.0), errors)

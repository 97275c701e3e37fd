"""A few seconds of the runtime benchmark, so the full one (`make bench-runtime`) cannot rot.

Runs the real script: raw sessions, modelyard and the naive aiohttp peer under wrk, the report
and the chart. Needs wrk (`apt-get install wrk`; `.ci/run` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_smoke_benchmark_writes_a_report_and_a_chart(tmp_path: Path) -> None:
    assert shutil.which("wrk"), "wrk is missing: apt-get install wrk"
    out, chart = tmp_path / "BENCH.md", tmp_path / "chart.png"
    run = subprocess.run(
        [sys.executable, "-m", "hack.bench_runtime", "--smoke", "--out", str(out),
         "--chart", str(chart)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = out.read_text()
    assert "## Runtime: modelyard vs raw onnxruntime vs peers" in report
    rows = [line for line in report.splitlines() if line.startswith("| modelyard (json) |")]
    assert len(rows) == 1
    assert "| naive aiohttp+orjson |" in report
    assert " err" not in rows[0], "modelyard answered errors under load"
    assert chart.read_bytes().startswith(b"\x89PNG")

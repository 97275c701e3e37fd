"""The auto rule for server processes: one per CPU on the CPU, one on a GPU, what memory holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard_runtime import sizing
from modelyard_runtime.settings import Settings
from modelyard_runtime.sizing import AUTO_MAX_PROCESSES, Facts, memory_limit, plan

GIB = 2**30
MIB = 2**20


def facts(**overrides: object) -> Facts:
    values: dict[str, object] = {
        "cpus": 4, "gpu": False, "model_bytes": 10 * MIB, "memory_bytes": 16 * GIB, **overrides,
    }  # fmt: skip
    return Facts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (facts(), 4),  # one per CPU
        (facts(cpus=1), 1),
        (facts(cpus=2, gpu=True), 1),  # a GPU: one process, one CUDA context
        (facts(cpus=64), AUTO_MAX_PROCESSES),
        (facts(cpus=8, memory_bytes=None), 8),  # memory unknown: the CPUs decide
        # 1 GiB at 80 %: (128 MiB + 2 x 200 MiB) per process -> 1
        (facts(cpus=8, model_bytes=200 * MIB, memory_bytes=GIB), 1),
        # 4 GiB at 80 %: 3276 MiB / 528 MiB -> 6
        (facts(cpus=8, model_bytes=200 * MIB, memory_bytes=4 * GIB), 6),
        (facts(cpus=8, model_bytes=10 * GIB, memory_bytes=8 * GIB), 1),  # never fewer than 1
    ],
)
def test_auto_processes(case: Facts, expected: int) -> None:
    assert plan(0, case) == expected


def test_an_explicit_count_is_kept() -> None:
    assert plan(3, facts(gpu=True, cpus=1)) == 3


@pytest.mark.parametrize(
    ("files", "meminfo", "expected"),
    [
        ({"memory.max": "2147483648\n"}, "", 2 * GIB),  # cgroup v2
        ({"memory.max": "max\n"}, "MemAvailable:    1048576 kB\n", GIB),  # no limit: available
        ({"memory/memory.limit_in_bytes": "536870912\n"}, "", 512 * MIB),  # cgroup v1
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, "", None),  # v1 "no limit"
        ({}, "", None),
    ],
)
def test_memory_limit_reads_the_cgroup_then_the_host(
    tmp_path: Path, files: dict[str, str], meminfo: str, expected: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    info = tmp_path / "meminfo"
    if meminfo:
        info.write_text("MemTotal:        2097152 kB\n" + meminfo)
    assert memory_limit(tmp_path, info) == expected


def test_the_facts_come_from_the_machine_and_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x" * 1000)
    monkeypatch.setattr(sizing, "usable_cpus", lambda: 3)
    monkeypatch.setattr(sizing, "gpu_present", lambda: True)
    monkeypatch.setattr(sizing, "memory_limit", lambda: 8 * GIB)
    on_cpu = sizing.facts_for(Settings(model_path=str(model), execution_provider="cpu"))
    assert on_cpu == Facts(cpus=3, gpu=False, model_bytes=1000, memory_bytes=8 * GIB)
    assert sizing.facts_for(Settings(model_path=str(model))).gpu  # auto with a GPU present
    assert sizing.processes_for(Settings(model_path=str(model), execution_provider="cpu")) == 3
    assert sizing.processes_for(Settings(model_path=str(model))) == 1
    assert sizing.processes_for(Settings(model_path=str(model), processes=5)) == 5
    picked_metrics_port = Settings(model_path=str(model), execution_provider="cpu", metrics_port=0)
    assert sizing.processes_for(picked_metrics_port) == 1  # one port cannot be shared

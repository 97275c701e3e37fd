"""CPUs a process may use (affinity, cgroup quota) and the onnxruntime threads derived from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard_runtime import startup
from modelyard_runtime.cpus import cpu_limit, usable_cpus
from modelyard_runtime.settings import Settings


@pytest.mark.parametrize(
    ("files", "limit", "usable"),
    [
        ({}, None, 64),  # no cgroup files: the affinity
        ({"cpu.max": "max 100000\n"}, None, 64),
        ({"cpu.max": "150000 100000\n"}, 2, 2),  # 1.5 CPUs: two threads may run
        ({"cpu.max": "50000 100000\n"}, 1, 1),
        ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4, 4),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None, 64),
        ({"cpu.max": "900000 100000\n"}, 9, 9),
        ({"cpu.max": "9900000 100000\n"}, 64, 64),  # a quota above the affinity: the affinity
    ],
)
def test_usable_cpus_follow_the_cgroup_quota(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    limit: int | None,
    usable: int,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_limit(tmp_path) == limit
    assert usable_cpus(tmp_path) == usable


@pytest.mark.parametrize(
    ("setting", "limit", "expected"),
    [(3, 2, 3), (0, 2, 2), (0, None, 0)],  # 0 without a limit: onnxruntime's own default
)
def test_intra_op_threads_default_to_the_cpu_limit(
    monkeypatch: pytest.MonkeyPatch, setting: int, limit: int | None, expected: int
) -> None:
    monkeypatch.setattr(startup, "cpu_limit", lambda: limit)
    settings = Settings(model_path="m.onnx", intra_op_threads=setting)
    assert startup.intra_op_threads(settings) == expected

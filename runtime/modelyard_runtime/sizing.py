"""How many server processes and onnxruntime threads a pod runs when the settings say ``auto``.

The rule (``plan``, pure), for ``processes: 0``:

- on a GPU (provider ``auto`` with a GPU visible, ``cuda``, ``tensorrt``): one process. The GPU
  batches best from one queue, and every process would hold its own CUDA context and model;
- on the CPU: one process per CPU the pod may use (its CPU limit, rounded up, else its affinity),
  at most ``AUTO_MAX_PROCESSES``. One Python process handles requests on at most one core, so a
  small model is limited by the event loop, not the model; a large one gains as much from several
  single-threaded sessions as from one multi-threaded session, and loses less to the event loops;
- but never more copies of the model than the memory holds: each process needs about
  ``PROCESS_BYTES`` plus twice the model file (the loaded weights and onnxruntime's arena), within
  ``MEMORY_SHARE`` of the container's memory limit (or of the memory available without a limit).

Each process then runs ``max(1, CPUs // processes)`` intra-op threads unless the settings name a
number. ``processes_for`` reads the facts (cgroup files, the model's size, the NVIDIA driver);
called by ``server.run`` before it decides whether to supervise. Starts nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Final

from modelyard_runtime.contract.gpu import gpu_present
from modelyard_runtime.cpus import CGROUP, usable_cpus
from modelyard_runtime.settings import Settings

AUTO_MAX_PROCESSES: Final = 8
PROCESS_BYTES: Final = 128 * 2**20  # interpreter, aiohttp, grpc, numpy, onnxruntime
MEMORY_SHARE: Final = 0.8  # of the memory limit; the rest for request buffers and the supervisor
MEMINFO: Final = Path("/proc/meminfo")

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the plan depends on."""

    cpus: int
    gpu: bool
    model_bytes: int
    memory_bytes: int | None  # the container's limit, else what the host has available


def plan(requested: int, facts: Facts) -> int:
    """The number of server processes: ``requested`` unless it is 0 (auto, the rule above)."""
    if requested > 0:
        return requested
    if facts.gpu:
        return 1
    count = min(facts.cpus, AUTO_MAX_PROCESSES)
    if facts.memory_bytes is not None:
        per_process = PROCESS_BYTES + 2 * facts.model_bytes
        count = min(count, int(facts.memory_bytes * MEMORY_SHARE) // per_process)
    return max(1, count)


def memory_limit(cgroup: Path = CGROUP, meminfo: Path = MEMINFO) -> int | None:
    """The cgroup memory limit in bytes (v2 ``memory.max``, v1 ``limit_in_bytes``); without one,
    the host's available memory; None if neither can be read."""
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            limit = int((cgroup / name).read_text().strip())
        except (OSError, ValueError):  # absent, or "max": no limit
            continue
        if 0 < limit < 2**60:  # v1 reports "no limit" as a huge number
            return limit
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def facts_for(settings: Settings) -> Facts:
    try:
        model_bytes = Path(settings.model_path).stat().st_size
    except OSError:
        model_bytes = 0  # the load stage reports it
    provider = settings.execution_provider
    return Facts(
        cpus=usable_cpus(),
        gpu=provider != "cpu" and gpu_present(),
        model_bytes=model_bytes,
        memory_bytes=memory_limit(),
    )


def processes_for(settings: Settings) -> int:
    """How many server processes to run for ``settings`` on this machine."""
    if settings.processes > 0:
        return settings.processes
    if settings.metrics_port == 0:
        log.info("processes: auto -> 1 (a picked metrics port cannot be shared)")
        return 1
    facts = facts_for(settings)
    count = plan(0, facts)
    memory = f"{facts.memory_bytes / 2**30:.1f} GiB" if facts.memory_bytes else "unknown"
    log.info(
        "processes: auto -> %d (%d CPUs, %s, model %.0f MiB, memory %s)",
        count,
        facts.cpus,
        "a GPU" if facts.gpu else "no GPU",
        facts.model_bytes / 2**20,
        memory,
    )
    return count

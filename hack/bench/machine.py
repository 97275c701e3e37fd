"""How busy the shared machine is with other work than the benchmark's own processes.

``other_cpus`` wraps a run and says how many CPUs the rest of the machine used meanwhile (other
sessions share it); ``settle`` waits for a quiet moment. Read from ``/proc``; Linux only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

QUIET_CPUS = 0.25  # less other work than this counts as a quiet machine

T = TypeVar("T")


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the machine was busy, of them this process and its descendants)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(v) for v in fields) - int(fields[3]) - int(fields[4])  # less idle, iowait
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry.name)] = int(stat[1])
            times[int(entry.name)] = int(stat[11]) + int(stat[12])
    ours, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        ours.update(children)
        frontier.extend(children)
    return busy / tick, sum(times.get(pid, 0) for pid in ours) / tick


def settle(budget: float, window: float = 2.0) -> float:
    """Wait, up to ``budget`` seconds, for a window in which other work uses under
    ``QUIET_CPUS``; the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < budget:
        busy, mine = cpu_seconds()
        time.sleep(window)  # sampling the machine's load, not synchronising anything
        busy_after, mine_after = cpu_seconds()
        if (busy_after - busy - (mine_after - mine)) / window < QUIET_CPUS:
            break
    return time.monotonic() - began


def other_cpus(run: Callable[[], T]) -> tuple[T, float]:
    """``run()``'s result, and the CPUs other work used on average while it ran."""
    began, (busy, mine) = time.monotonic(), cpu_seconds()
    result = run()
    busy_after, mine_after = cpu_seconds()
    others = (busy_after - busy - (mine_after - mine)) / max(1e-9, time.monotonic() - began)
    return result, max(0.0, others)

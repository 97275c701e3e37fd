"""How many CPUs this process may use: its affinity, capped by a cgroup CPU quota.

In a pod, the quota is the container's CPU limit (cgroup v2 ``cpu.max``, v1 CFS quota). Used to
size onnxruntime's intra-op threads when the settings leave them at 0, and to split the CPUs
between server processes. Reads files only; starts nothing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cpu_limit(cgroup: Path = CGROUP) -> int | None:
    """The cgroup CPU quota in whole CPUs (rounded up, at most the affinity), or None if unset."""
    quotas = (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"))  # v2, v1
    for quota_file, period_file in quotas:
        try:
            fields = (cgroup / quota_file).read_text().split()
            if period_file is not None:
                fields.append((cgroup / period_file).read_text().strip())
            quota, period = int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):  # absent, or "max" / -1: no quota
            continue
        if quota > 0 and period > 0:
            return max(1, min(len(os.sched_getaffinity(0)), math.ceil(quota / period)))
    return None


def usable_cpus(cgroup: Path = CGROUP) -> int:
    """The CPU limit when there is one, else the CPUs this process may run on."""
    return cpu_limit(cgroup) or len(os.sched_getaffinity(0))

"""What the operator remembers between syncs, for speed only: losing it (a restart) loses no
state, because the rollout's state lives in each object's status.

- ``written``: the status this operator last wrote per object (newer than the watch may have
  delivered yet, so a quick second sync does not act on a stale status);
- ``applied``: the digest of each child last applied (the watch may still show the old one);
- ``problems``: what the spec handler found (a missing Secret, a child the apiserver rejected);
- ``static_generation``: the generation whose Service, PDB and HPA were applied;
- one lock per object, so two syncs of one object never interleave.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from typing import Any

from modelyard_operator.reconcile.observed import Problem

Key = tuple[str, str]  # (namespace, name)


@dataclasses.dataclass
class Memory:
    written: dict[Key, tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)
    applied: dict[tuple[Key, str], str] = dataclasses.field(default_factory=dict)
    problems: dict[Key, Problem | None] = dataclasses.field(default_factory=dict)
    static_generation: dict[Key, int] = dataclasses.field(default_factory=dict)
    locks: defaultdict[Key, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )

    def forget(self, key: Key) -> None:
        self.written.pop(key, None)
        self.problems.pop(key, None)
        self.static_generation.pop(key, None)
        self.locks.pop(key, None)
        for applied in [k for k in self.applied if k[0] == key]:
            del self.applied[applied]

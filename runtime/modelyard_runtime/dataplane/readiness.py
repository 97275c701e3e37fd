"""Whether the server takes traffic: loading, a missing GPU, its sibling processes, draining.

Two questions with different answers while draining: ``problem`` (readiness: 503 from the moment
SIGTERM arrives, so endpoints drop the pod) and ``serving_problem`` (inference: still served
while draining, so requests already on their way succeed). Pure apart from asking the siblings.
"""

from __future__ import annotations

from typing import Protocol


class Siblings(Protocol):
    """The other server processes of the pod (``server.processes.ProcessGroup``)."""

    @property
    def count(self) -> int: ...

    def ready_count(self) -> int: ...


class Readiness:
    __slots__ = ("draining", "group_ready", "not_ready_reason", "siblings")

    def __init__(self, siblings: Siblings | None = None) -> None:
        self.not_ready_reason = "the model is loading"
        self.draining = False
        self.siblings = siblings
        self.group_ready = False  # every sibling has been seen ready (then it stays so)

    def problem(self) -> str:
        """Why the server is not Ready (empty when it is)."""
        if self.draining:
            return "the server is shutting down"
        return self.serving_problem()

    def serving_problem(self) -> str:
        """Why inference cannot be served (empty when it can)."""
        if self.not_ready_reason or self.siblings is None or self.group_ready:
            return self.not_ready_reason
        ready = self.siblings.ready_count()
        if ready < self.siblings.count:
            return f"{ready} of {self.siblings.count} server processes are ready"
        self.group_ready = True  # a sibling that exits takes the whole group down with it
        return ""

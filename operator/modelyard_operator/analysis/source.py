"""The seam between the analysis and wherever metrics come from (Prometheus, or a fake)."""

from __future__ import annotations

from typing import Protocol

from modelyard_operator.errors import ModelyardOperatorError


class MetricsUnavailableError(ModelyardOperatorError):
    """The query could not be answered (unreachable, timed out, or an error from the server)."""


class MetricsSource(Protocol):
    async def query(self, promql: str) -> list[float]:
        """The instant-vector (or scalar) values of ``promql`` now; ``MetricsUnavailableError`` when
        it cannot be answered."""
        ...

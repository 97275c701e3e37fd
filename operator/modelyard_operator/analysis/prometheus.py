"""``MetricsSource`` over Prometheus's HTTP API (``/api/v1/query``): the only I/O of the analysis.

Every call has a timeout; any failure (connection, HTTP status, a Prometheus error, a body that
is not what the API documents) becomes ``MetricsUnavailableError`` with the reason.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp

from modelyard_operator.analysis.source import MetricsUnavailableError

TIMEOUT: Final = aiohttp.ClientTimeout(total=10)


class PrometheusSource:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url.rstrip("/") + "/api/v1/query"

    async def query(self, promql: str) -> list[float]:
        try:
            async with self._session.get(
                self._url, params={"query": promql}, timeout=TIMEOUT
            ) as response:
                body: Any = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise MetricsUnavailableError(f"Prometheus unreachable: {e or type(e).__name__}") from e
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise MetricsUnavailableError(f"Prometheus error: {error or response.status}")
        return _values(body.get("data") or {})


def _values(data: dict[str, Any]) -> list[float]:
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar":
            return [float(result[1])]  # type: ignore[index]
        if kind == "vector" and isinstance(result, list):
            return [float(sample["value"][1]) for sample in result]
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise MetricsUnavailableError(f"Prometheus answered an unexpected shape: {e}") from e
    raise MetricsUnavailableError(f"the query returned a {kind}, not a number or an instant vector")

"""Canary analysis: PromQL for each check (``queries``), a pure judge of what came back
(``judge``), the ``MetricsSource`` seam and a thin Prometheus client behind it (``prometheus``),
and ``run`` which ties them together for one analysis."""

"""The series names a PromQL expression reads, and the ones modelyard exposes (design §5)."""

from __future__ import annotations

from typing import Any

import promql_parser

from modelyard_operator.metrics import OperatorMetrics
from modelyard_runtime.metrics import RuntimeMetrics


def known_series() -> set[str]:
    """Series the runtime and the operator expose (a histogram as its three series), and ``up``."""
    runtime = RuntimeMetrics(model="m", version="v", revision="r", track="stable")
    names = {"up"}
    for registry in (runtime.registry, OperatorMetrics().registry):
        for family in registry.collect():
            if family.type == "histogram":
                names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
            elif family.type == "counter":
                names.add(family.name + "_total")
            else:
                names.add(family.name)
    return names


def series_names(expr: str) -> set[str]:
    """Metric names of every vector selector in ``expr`` (which must parse)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found

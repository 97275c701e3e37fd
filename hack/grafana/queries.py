"""The dashboards' queries as Prometheus will see them: read out of the JSON, variables filled in.

``panel_queries`` lists every target of every panel (and every annotation query) of a dashboard;
``substitute`` replaces Grafana's template variables (``$var``, ``${var}``, ``${var:format}``,
``[[var]]``) and its built-in intervals (``$__rate_interval``, ``$__interval``, ``$__range`` ...)
the way Grafana would before sending the query, so it can be parsed or run. Used by the tests,
the live check and the previews.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

# Panels (dashboard uid, panel title) whose queries may return no series on the live setup,
# *only* because modelyard_canary_weight, modelyard_rollouts_total and
# modelyard_analysis_checks_total get series once the operator runs canary rollouts. Remove
# entries as soon as the live setup runs a canary rollout (see docs/observability.md).

# Grafana's built-in interval variables, by the value the live check gives them.
BUILTINS: Final = ("__rate_interval", "__interval", "__range")
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclasses.dataclass(frozen=True)
class PanelQuery:
    """One query of a dashboard: ``panel`` is the panel's title (``annotation: <name>`` for an
    annotation query), ``ref`` the target's refId."""

    dashboard: str
    panel: str
    panel_type: str
    ref: str
    expr: str
    legend: str = ""
    instant: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.dashboard, self.panel)

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}"


def panels(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' collapsed children included."""
    for panel in document.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def panel_queries(document: Mapping[str, Any]) -> list[PanelQuery]:
    uid = str(document["uid"])
    found = [
        PanelQuery(
            dashboard=uid,
            panel=panel["title"],
            panel_type=panel["type"],
            ref=target.get("refId", ""),
            expr=target["expr"],
            legend=target.get("legendFormat", ""),
            instant=bool(target.get("instant")),
        )
        for panel in panels(document)
        for target in panel.get("targets") or []
    ]
    for annotation in (document.get("annotations") or {}).get("list") or []:
        if annotation.get("expr"):
            name = f"annotation: {annotation['name']}"
            found.append(PanelQuery(uid, name, "annotation", "", annotation["expr"]))
    return found


def variable_queries(document: Mapping[str, Any]) -> dict[str, str]:
    """The ``label_values(...)`` query of each query variable, by variable name."""
    return {
        variable["name"]: variable["query"]
        for variable in (document.get("templating") or {}).get("list") or []
        if variable["type"] == "query"
    }


def variable_names(document: Mapping[str, Any]) -> set[str]:
    return {variable["name"] for variable in (document.get("templating") or {}).get("list") or []}


def used_variables(expr: str) -> set[str]:
    return {next(name for name in match.groups() if name) for match in _VARIABLE.finditer(expr)}


def substitute(
    expr: str,
    values: Mapping[str, str],
    *,
    rate_interval: str = "1m",
    interval: str = "15s",
    range_: str = "1h",
) -> str:
    """``expr`` with every variable replaced; a variable without a value raises ``KeyError``."""
    given = {"__rate_interval": rate_interval, "__interval": interval, "__range": range_}
    given.update(values)

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return given[name]

    return _VARIABLE.sub(replace, expr)


def parse_label_values(query: str) -> tuple[str, str]:
    """``label_values(metric{...}, label)`` -> (``metric{...}``, ``label``)."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip(), re.DOTALL)
    if match is None:
        raise ValueError(f"not a label_values(series, label) query: {query!r}")
    return match.group(1).strip(), match.group(2)

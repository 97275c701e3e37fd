"""Building blocks of the dashboards: PromQL fragments, panels, template variables.

Every panel and query reads the ``datasource`` template variable (``${datasource}``), never an
export-style ``__inputs`` entry, which file and sidecar provisioning leave unresolved. Queries use
only the design's metric names and labels (design §5) and ``up`` of the two scrape jobs.

Pure builders over grafana-foundation-sdk; ``finish`` turns a dashboard into Grafana's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus, stat
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model

RUNTIME_JOB: Final = "modelyard-runtime"
OPERATOR_JOB: Final = "modelyard-operator"
DATASOURCE: Final = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE: Final = "$__rate_interval"
SERVER_ERRORS: Final = "5..|429"  # as the availability SLO counts them (hack/alerts.py)

Panel = cogbuilder.Builder[model.Panel]

# -- queries ---------------------------------------------------------------------------------


def selector(metric: str, filters: str, extra: str = "") -> str:
    return f"{metric}{{{', '.join(part for part in (filters, extra) if part)}}}"


def rate(metric: str, filters: str, extra: str = "", window: str = RATE) -> str:
    return f"rate({selector(metric, filters, extra)}[{window}])"


def ratio(metric: str, filters: str, matcher: str, by: str = "") -> str:
    """Share of ``metric``'s rate that matches ``matcher``; 0, not nothing, without matches."""
    group = f" by ({by})" if by else ""
    total = f"sum{group} ({rate(metric, filters)})"
    part = f"sum{group} ({rate(metric, filters, matcher)})"
    return f"(\n  {part}\n  or\n  {total} * 0\n)\n/\n{total}"


def quantile(q: float, histogram: str, filters: str, by: str = "") -> str:
    group = ", ".join(("le", *([by] if by else [])))
    return f"histogram_quantile({q:g}, sum by ({group}) ({rate(histogram + '_bucket', filters)}))"


def pods(filters: str, aggregate: str) -> str:
    """``up`` of the runtime pods whose model matches ``filters``, by track: the model's
    labels come from ``modelyard_model_info``, kept an hour so a pod that stopped answering
    still counts."""
    info = f"last_over_time({selector('modelyard_model_info', filters)}[1h])"
    up = f'up{{job="{RUNTIME_JOB}", namespace=~"$namespace"}}'
    return (
        f"{aggregate} by (track) (\n  {up}\n  * on (namespace, pod) group_left (track)\n"
        f"  max by (namespace, pod, track) ({info})\n)"
    )


def target(expr: str, legend: str, ref: str, *, fmt: str = "", instant: bool = False) -> Any:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    query = query.datasource(DATASOURCE)
    query = query.instant() if instant else query.range()
    if fmt:
        query = query.format(prometheus_model.PromQueryFormat(fmt))
    return query


# -- panels ----------------------------------------------------------------------------------


def legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
    )


def tooltip() -> common_builders.VizTooltipOptions:
    return (
        common_builders.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.DESCENDING)
    )


def thresholds(*steps: tuple[float | None, str]) -> builders.ThresholdsConfig:
    return (
        builders.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def timeseries(
    title: str, description: str, unit: str, targets: Sequence[Any], *, w: int, h: int = 8
) -> ts.Panel:
    panel = (
        ts.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(h)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(legend())
        .tooltip(tooltip())
    )
    for query in targets:
        panel = panel.with_target(query)
    return panel


def single_stat(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Any],
    *,
    w: int,
    h: int = 4,
    limits: builders.ThresholdsConfig | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(h)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(limits or thresholds((None, "green")))
    )
    for query in targets:
        panel = panel.with_target(query)
    return panel


# -- variables -------------------------------------------------------------------------------


def datasource_variable() -> builders.DatasourceVariable:
    return builders.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(name: str, label: str, query: str) -> builders.QueryVariable:
    return (
        builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def finish(board: builders.Dashboard) -> dict[str, Any]:
    """The SDK's model as Grafana's JSON: panels numbered 1.. in order, ``id`` null."""
    built = board.build()
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    document: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(built))
    document["id"] = None
    return document


def base(uid: str, title: str, description: str) -> builders.Dashboard:
    return (
        builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["modelyard"])
        .timezone("browser")
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(datasource_variable())
    )


def with_sections(
    board: builders.Dashboard, sections: Sequence[tuple[str, Sequence[Panel]]]
) -> builders.Dashboard:
    """A row header per section, its panels after it, laid out left to right."""
    for title, panels in sections:
        board = board.with_row(builders.Row(title))
        for panel in panels:
            board = board.with_panel(panel)
    return board

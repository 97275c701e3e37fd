"""Preview images of the dashboards: every panel drawn with matplotlib from its own queries.

``draw`` lays the panels out on Grafana's 24-column grid as the JSON places them and draws each
from the same queries Grafana would send (variables filled in by ``queries.substitute``): time
series as lines, stats as their last value, the heatmap from its buckets, the phase timeline as
coloured bands with the panel's value mappings, the table as text. A panel without data says
so.

``python -m hack.grafana.preview --prometheus URL`` draws against any Prometheus;
``make dashboards-preview`` brings up the live setup (``hack.grafana.live``), drives traffic for
a few minutes and writes ``docs/dashboards/*.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from matplotlib.ticker import FuncFormatter

from hack.grafana import queries
from hack.grafana.live import query, query_range

if TYPE_CHECKING:
    from matplotlib.axes import Axes

OUT: Final = Path("docs/dashboards")
UNIT_HEIGHT: Final = 0.34  # inches per grid row; a grid column is 1/24 of the width
WIDTH: Final = 18.0
COLORS: Final = {
    "green": "#56a64b", "red": "#e02f44", "orange": "#ff9830", "yellow": "#fade2a",
    "blue": "#3274d9", "purple": "#a352cc", "dark-orange": "#c4400f",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Window:
    start: float
    end: float
    step: float
    rate_interval: str

    @property
    def range_(self) -> str:
        return f"{max(1, round(self.end - self.start))}s"


@dataclasses.dataclass
class PanelData:
    """What a panel's queries returned: (legend, timestamps, values) per series."""

    series: list[tuple[str, list[float], list[float]]] = dataclasses.field(default_factory=list)
    rows: list[dict[str, str]] = dataclasses.field(default_factory=list)


def legend(template: str, labels: Mapping[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text.strip() or ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def fetch(
    prometheus: str, document: Mapping[str, Any], values: Mapping[str, str], window: Window
) -> dict[str, PanelData]:
    """Every panel's data, by title, from the live Prometheus."""
    data: dict[str, PanelData] = {}
    for item in queries.panel_queries(document):
        if item.panel_type == "annotation":
            continue
        expr = queries.substitute(
            item.expr, values, rate_interval=window.rate_interval, range_=window.range_
        )
        panel = data.setdefault(item.panel, PanelData())
        if item.instant or item.panel_type == "stat":
            for sample in query(prometheus, expr, at=window.end):
                labels, value = sample["metric"], float(sample["value"][1])
                panel.series.append((legend(item.legend, labels), [window.end], [value]))
                panel.rows.append({**labels, "Value": sample["value"][1]})
            continue
        result = query_range(prometheus, expr, start=window.start, end=window.end, step=window.step)
        for series in result:
            times = [float(t) for t, _ in series["values"]]
            points = [float(v) for _, v in series["values"]]
            panel.series.append((legend(item.legend, series["metric"]), times, points))
    return data


def format_value(value: float, unit: str) -> str:
    if math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "percent":
        return f"{value:.3g}%"
    if unit == "s":
        if value == 0:
            return "0 s"
        return f"{value * 1000:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"
    suffix = {"reqps": " req/s", "ops": " ops/s"}.get(unit, "")
    return f"{value:.3g}{suffix}"


def minutes_axis(ax: Axes) -> None:
    """Time as minutes before the end of the window, as Grafana's relative ranges read."""
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}m" if v < -0.01 else "now"))


def _timeseries(ax: Axes, panel: Mapping[str, Any], data: PanelData, end: float) -> None:
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    for label, times, values in sorted(data.series):
        ax.plot([(t - end) / 60 for t in times], values, linewidth=1, label=label)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, unit)))
    minutes_axis(ax)
    ax.legend(fontsize=5, loc="upper left", ncol=3, frameon=False)


def _stat(ax: Axes, panel: Mapping[str, Any], data: PanelData) -> None:
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    ax.axis("off")
    shown = sorted(data.series)[:4]
    for index, (label, _, values) in enumerate(shown):
        x = (index + 0.5) / len(shown)
        ax.text(
            x,
            0.45,
            format_value(values[-1], unit),
            ha="center",
            va="center",
            fontsize=15 if len(shown) < 3 else 10,
            color=COLORS["green"],
            weight="bold",
        )
        ax.text(x, 0.08, label, ha="center", va="center", fontsize=6, color="#555")  # fmt: skip


def _heatmap(ax: Axes, data: PanelData, end: float) -> None:
    by_le = sorted(
        ((float(label), values) for label, _, values in data.series if label != "+Inf"),
        key=lambda item: item[0],
    )
    if not by_le:
        return
    rows = [by_le[0][1]] + [
        [max(0.0, b - a) for a, b in zip(lower, upper, strict=True)]
        for (_, lower), (_, upper) in itertools.pairwise(by_le)
    ]
    clean = [[0.0 if math.isnan(v) else v for v in row] for row in rows]
    times = data.series[0][1]
    ax.imshow(clean, aspect="auto", origin="lower", cmap="Oranges", interpolation="nearest",
              extent=((times[0] - end) / 60, 0, 0, len(clean)))  # fmt: skip
    ticks = range(0, len(by_le), max(1, len(by_le) // 6))
    ax.set_yticks([t + 0.5 for t in ticks], [format_value(by_le[t][0], "s") for t in ticks])
    minutes_axis(ax)


def _timeline(ax: Axes, panel: Mapping[str, Any], data: PanelData, end: float) -> None:
    mapping = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    for row, (label, times, values) in enumerate(sorted(data.series)):
        for t, value in zip(times, values, strict=True):
            entry = mapping.get(str(int(value)), {"color": "#888", "text": "?"})
            width = (times[1] - times[0]) / 60 if len(times) > 1 else 1
            ax.barh(row, width, left=(t - end) / 60, color=COLORS.get(entry["color"], "#888"))
        now = mapping.get(str(int(values[-1])), {}).get("text", "?")
        ax.text((times[0] - end) / 60, row, f" {label}: {now}", va="center", fontsize=7,
                color="white", weight="bold")  # fmt: skip
    ax.set_yticks([])
    minutes_axis(ax)


def _table(ax: Axes, panel: Mapping[str, Any], data: PanelData) -> None:
    ax.axis("off")
    order = panel["transformations"][0]["options"]["indexByName"]
    columns = sorted(order, key=order.__getitem__)
    cells = [[row.get(c, "")[:16] for c in columns] for row in data.rows]
    table = ax.table(cellText=cells, colLabels=columns, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(6)


def draw(
    document: Mapping[str, Any], data: Mapping[str, PanelData], out: Path, window: Window
) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    panels = list(queries.panels(document))
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    figure = plt.figure(figsize=(WIDTH, height * UNIT_HEIGHT + 0.6))
    grid = figure.add_gridspec(height, 24, hspace=0.0, wspace=0.0)
    figure.suptitle(f"{document['title']}  (preview from the live setup)", fontsize=11, y=0.998)
    for panel in panels:
        pos = panel["gridPos"]
        ax = figure.add_subplot(
            grid[pos["y"] : pos["y"] + pos["h"], pos["x"] : pos["x"] + pos["w"]]
        )
        ax.tick_params(labelsize=6)
        if panel["type"] == "row":
            ax.axis("off")
            ax.text(0, 0.2, panel["title"], fontsize=10, weight="bold")
            continue
        ax.set_title(panel["title"], fontsize=8, loc="left")
        found = data.get(panel["title"], PanelData())
        if not found.series and not found.rows:
            ax.text(0.5, 0.5, "NO DATA", ha="center", va="center", fontsize=8, color="#888",
                    transform=ax.transAxes)  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        kind = panel["type"]
        if kind == "timeseries":
            _timeseries(ax, panel, found, window.end)
        elif kind == "stat":
            _stat(ax, panel, found)
        elif kind == "heatmap":
            _heatmap(ax, found, window.end)
        elif kind == "state-timeline":
            _timeline(ax, panel, found, window.end)
        elif kind == "table":
            _table(ax, panel, found)
    figure.subplots_adjust(left=0.03, right=0.99, top=0.985, bottom=0.01)
    for ax in figure.axes:  # room for the titles between stacked panels
        box = ax.get_position()
        ax.set_position((box.x0 + 0.004, box.y0 + 0.006, box.width - 0.008, box.height - 0.018))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=72)
    plt.close(figure)


def render(
    prometheus: str,
    documents: Mapping[str, Mapping[str, Any]],
    values: Mapping[str, str],
    *,
    out: Path,
    minutes: float,
) -> list[Path]:
    end = time.time()
    window = Window(start=end - minutes * 60, end=end, step=5, rate_interval="30s")
    written = []
    for name, document in documents.items():
        path = out / f"{name}.png"
        draw(document, fetch(prometheus, document, values, window), path, window)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    from hack import dashboards
    from hack.grafana import live

    parser = argparse.ArgumentParser(description="Draw the dashboards from a live Prometheus.")
    parser.add_argument("--prometheus", help="draw against this Prometheus (else: the live setup)")
    parser.add_argument("--minutes", type=float, default=6.0, help="traffic and window length")
    parser.add_argument("--out", type=Path, default=dashboards.ROOT / OUT)
    args = parser.parse_args(argv)
    documents = dashboards.documents()
    if args.prometheus:
        paths = render(args.prometheus, documents, live.VARIABLES, out=args.out,
                       minutes=args.minutes)  # fmt: skip
    else:
        root = dashboards.ROOT / ".local" / "dashboards-preview"
        with live.running(root) as setup, live.load(setup):
            time.sleep(args.minutes * 60)  # the preview shows this much traffic
            paths = render(setup.prometheus, documents, live.VARIABLES, out=args.out,
                           minutes=args.minutes)  # fmt: skip
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

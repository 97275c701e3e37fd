"""The Serving dashboard: runtime traffic, errors, latency and saturation per namespace, model,
version and track, with the stable and canary tracks side by side.

Pure: ``serving()`` returns Grafana's JSON for ``dashboards/serving.json``.
"""

from __future__ import annotations

from typing import Any, Final

from grafana_foundation_sdk.builders import heatmap, table
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_model

from hack.grafana.kit import (
    DATASOURCE,
    RATE,
    RUNTIME_JOB,
    SERVER_ERRORS,
    Panel,
    base,
    finish,
    pods,
    quantile,
    query_variable,
    rate,
    ratio,
    selector,
    single_stat,
    target,
    thresholds,
    timeseries,
    with_sections,
)

SERVING: Final = 'namespace=~"$namespace", model=~"$model", version=~"$version", track=~"$track"'


def serving_overview(f: str) -> list[Panel]:
    requests, duration = "modelyard_requests_total", "modelyard_request_duration_seconds"
    return [
        single_stat(
            "Requests/s", "Inference requests per second, all protocols and codes.", "reqps",
            [target(f"sum({rate(requests, f)})", "requests/s", "A")], w=4,
        ),
        single_stat(
            "Server errors",
            "Share of requests answered 5xx or 429 (queue full): what the availability SLO "
            "counts.",
            "percentunit",
            [target(ratio(requests, f, f'code=~"{SERVER_ERRORS}"'), "server errors", "A")],
            w=4, limits=thresholds((None, "green"), (0.001, "orange"), (0.01, "red")),
        ),
        single_stat(
            "p99 latency", "99th percentile of the request duration, server side.", "s",
            [target(quantile(0.99, duration, f), "p99", "A")],
            w=4, limits=thresholds((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
        single_stat(
            "Pods up",
            "Runtime pods that answered their last scrape, and all runtime pods scraped.",
            "short",
            [target(f"sum({pods(f, 'sum')})", "up", "A"),
             target(f"sum({pods(f, 'count')})", "scraped", "B")],
            w=4,
        ),
        single_stat(
            "In flight", "Requests being handled now, over all selected pods.", "short",
            [target(f"sum({selector('modelyard_requests_in_flight', f)})", "in flight", "A")],
            w=4,
        ),
        single_stat(
            "Queued", "Requests waiting in the batching queues now.", "short",
            [target(f"sum({selector('modelyard_queue_depth', f)})", "queued", "A")], w=4,
        ),
    ]  # fmt: skip


def serving_traffic(f: str) -> list[Panel]:
    requests = "modelyard_requests_total"
    return [
        timeseries(
            "Requests by protocol and code",
            "Requests per second by protocol (rest = OIP v2 REST, grpc = OIP v2 gRPC, v1 = "
            "TF-Serving REST) and HTTP-style status code.",
            "reqps",
            [target(f"sum by (protocol, code) ({rate(requests, f)})", "{{protocol}} {{code}}",
                    "A")],
            w=12,
        ),
        timeseries(
            "Error ratio",
            "Server errors (5xx and 429, what the SLO counts) and client errors (other 4xx) "
            "as a share of all requests.",
            "percentunit",
            [target(ratio(requests, f, f'code=~"{SERVER_ERRORS}"'), "server errors", "A"),
             target(ratio(requests, f, 'code=~"4..", code!="429"'), "client errors", "B")],
            w=12,
        ),
    ]  # fmt: skip


def serving_tracks(f: str) -> list[Panel]:
    requests, duration = "modelyard_requests_total", "modelyard_request_duration_seconds"
    return [
        timeseries(
            "Traffic share by track",
            "Share of requests served by the stable and the canary pods.",
            "percentunit",
            [target(f"sum by (track) ({rate(requests, f)})\n/ ignoring (track) group_left\n"
                    f"sum({rate(requests, f)})", "{{track}}", "A")],
            w=8,
        ),
        timeseries(
            "Server error ratio by track",
            "5xx and 429 responses as a share of each track's and version's requests, as the "
            "canary analysis judges them.",
            "percentunit",
            [target(ratio(requests, f, f'code=~"{SERVER_ERRORS}"', "track, version"),
                    "{{track}} {{version}}", "A")],
            w=8,
        ),
        timeseries(
            "p99 latency by track",
            "99th percentile request duration of each track and version.",
            "s",
            [target(quantile(0.99, duration, f, "track, version"), "{{track}} {{version}}",
                    "A")],
            w=8,
        ),
    ]  # fmt: skip


def serving_latency(f: str) -> list[Panel]:
    duration = "modelyard_request_duration_seconds"
    queue, compute = "modelyard_queue_duration_seconds", "modelyard_compute_duration_seconds"
    batch = "modelyard_batch_size"
    return [
        timeseries(
            "Request latency",
            "p50, p90 and p99 of the request duration (received to response ready), per model.",
            "s",
            [target(quantile(q, duration, f, "model"), f"p{q * 100:g} {{{{model}}}}", ref)
             for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))],
            w=12,
        ),
        heatmap.Panel()
        .title("Request latency distribution")
        .description("Requests per latency bucket over time (the histogram's buckets).")
        .datasource(DATASOURCE)
        .span(12)
        .height(8)
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .color(heatmap.HeatmapColorOptions().mode(heatmap_model.HeatmapColorMode.SCHEME).scheme("Oranges"))
        .with_target(target(
            f"sum by (le) (increase({selector(duration + '_bucket', f)}[{RATE}]))",
            "{{le}}", "A", fmt="heatmap",
        )),
        timeseries(
            "Queue wait and compute time",
            "Time a request waited in the batching queue, and time one batch spent in the "
            "inference session (p50 and p99).",
            "s",
            [target(quantile(0.5, queue, f), "queue p50", "A"),
             target(quantile(0.99, queue, f), "queue p99", "B"),
             target(quantile(0.5, compute, f), "compute p50", "C"),
             target(quantile(0.99, compute, f), "compute p99", "D")],
            w=12,
        ),
        timeseries(
            "Batch size",
            "Rows per batch run by the session: the mean, and the p99 per track.",
            "short",
            [target(f"sum by (track) ({rate(batch + '_sum', f)})\n/\n"
                    f"sum by (track) ({rate(batch + '_count', f)})", "mean {{track}}", "A"),
             target(quantile(0.99, batch, f, "track"), "p99 {{track}}", "B")],
            w=12,
        ),
    ]  # fmt: skip


def serving_saturation(f: str) -> list[Panel]:
    return [
        timeseries(
            "In flight and queued",
            "Requests being handled and requests waiting in the batching queue, per track.",
            "short",
            [target(f"sum by (track) ({selector('modelyard_requests_in_flight', f)})",
                    "in flight {{track}}", "A"),
             target(f"sum by (track) ({selector('modelyard_queue_depth', f)})",
                    "queued {{track}}", "B")],
            w=12,
        ),
        timeseries(
            "Rejections by reason",
            "Requests refused before inference: queue_full (429), timeout (504), too_large "
            "(413), bad_request (400), unauthorized (401).",
            "reqps",
            [target(f"sum by (track, reason) ({rate('modelyard_rejected_requests_total', f)})",
                    "{{track}} {{reason}}", "A")],
            w=12,
        ),
    ]  # fmt: skip


def serving_pods(f: str) -> list[Panel]:
    info_columns = (
        "namespace", "pod", "model", "version", "track", "revision", "execution_provider",
        "opset", "sha256",
    )  # fmt: skip
    organize = model.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": {"Time": True, "Value": True},
            "indexByName": {name: index for index, name in enumerate(info_columns)},
        },
    )
    info = selector("modelyard_model_info", f)
    return [
        timeseries(
            "Runtime pods up",
            "Runtime pods that answer scrapes, and all runtime pods Prometheus scrapes, per "
            f"track (job {RUNTIME_JOB}).",
            "short",
            [target(pods(f, "sum"), "up {{track}}", "A"),
             target(pods(f, "count"), "scraped {{track}}", "B")],
            w=12,
        ),
        timeseries(
            "Model load time by stage",
            "Seconds each startup stage took (verify, load, warm-up...), slowest pod.",
            "s",
            [target(f"max by (track, version, stage) "
                    f"({selector('modelyard_model_load_duration_seconds', f)})",
                    "{{track}} {{version}} {{stage}}", "A")],
            w=12,
        ),
        table.Panel()
        .title("Loaded models")
        .description("One row per runtime pod: the model it serves (modelyard_model_info).")
        .datasource(DATASOURCE)
        .span(24)
        .height(6)
        .with_target(target(
            f"max by ({', '.join(info_columns)}) ({info})", "", "A", fmt="table",
            instant=True,
        ))
        .with_transformation(organize),
    ]  # fmt: skip


def serving() -> dict[str, Any]:
    f = SERVING
    info = "modelyard_model_info"
    board = (
        base(
            "modelyard-serving",
            "modelyard / Serving",
            "Runtime traffic, errors, latency and saturation per namespace, model, version and "
            "track (stable or canary).",
        )
        .with_variable(query_variable("namespace", "Namespace", f"label_values({info}, namespace)"))
        .with_variable(query_variable(
            "model", "Model", f'label_values({info}{{namespace=~"$namespace"}}, model)'))
        .with_variable(query_variable(
            "version", "Version",
            f'label_values({info}{{namespace=~"$namespace", model=~"$model"}}, version)'))
        .with_variable(query_variable(
            "track", "Track",
            f'label_values({info}{{namespace=~"$namespace", model=~"$model", '
            f'version=~"$version"}}, track)'))
    )  # fmt: skip
    sections = (
        ("Overview", serving_overview(f)),
        ("Traffic", serving_traffic(f)),
        ("Stable vs canary", serving_tracks(f)),
        ("Latency", serving_latency(f)),
        ("Saturation", serving_saturation(f)),
        ("Pods and models", serving_pods(f)),
    )
    return finish(with_sections(board, sections))

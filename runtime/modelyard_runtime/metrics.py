"""The runtime's Prometheus metrics (design §5): names, labels and buckets are a contract.

``RuntimeMetrics`` owns its ``CollectorRegistry`` (never the global one) and pre-binds the label
values that never change (model, version, revision, track), so the hot path does one dict lookup.
The batcher reports through the ``BatchObserver`` methods, the servers through ``request_done``;
the in-flight and queue-depth gauges are read from the server at scrape time (``watch``).

With several server processes (``server.processes``) every value lives in prometheus_client's
multiprocess files, and ``exposition`` reports the sum over the processes. The two gauges are
then sampled: by ``sample``, once a second and before each scrape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

# Fine below 5 ms, exact edges at the usual SLOs (25/50/100/250/500 ms, 1 s).
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025,
    0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
BASE_LABELS: Final = ("model", "version", "revision", "track")
REJECT_REASONS: Final = ("queue_full", "timeout", "too_large", "bad_request", "unauthorized")


class RuntimeMetrics:
    """Every runtime metric, bound to one model's labels."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        revision: str,
        track: str,
        multiprocess_dir: str | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposed = self.registry
        if multiprocess_dir is not None:
            if not getattr(values.ValueClass, "_multiprocess", False):
                raise RuntimeError(
                    "multiprocess metrics need PROMETHEUS_MULTIPROC_DIR set before "
                    "prometheus_client is imported"
                )
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        self._sources: tuple[Callable[[], float], Callable[[], float]] | None = None
        self._base = (model, version, revision, track)
        reg = self.registry
        self._requests = Counter(
            "modelyard_requests_total",
            "Inference requests by protocol and HTTP-style status code.",
            (*BASE_LABELS, "protocol", "code"),
            registry=reg,
        )
        self._duration = Histogram(
            "modelyard_request_duration_seconds",
            "Time from request received to response ready.",
            (*BASE_LABELS, "protocol"),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        queue = Histogram(
            "modelyard_queue_duration_seconds",
            "Time a request waited in the batching queue.",
            BASE_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        compute = Histogram(
            "modelyard_compute_duration_seconds",
            "Time one batch spent in the inference session.",
            BASE_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        batch = Histogram(
            "modelyard_batch_size",
            "Rows in each batch run by the session.",
            BASE_LABELS,
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        in_flight = Gauge(
            "modelyard_requests_in_flight",
            "Inference requests being handled now.",
            BASE_LABELS,
            registry=reg,
            multiprocess_mode="livesum",
        )
        depth = Gauge(
            "modelyard_queue_depth",
            "Requests waiting in the batching queue.",
            BASE_LABELS,
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._rejected = Counter(
            "modelyard_rejected_requests_total",
            "Requests refused before inference, by reason.",
            (*BASE_LABELS, "reason"),
            registry=reg,
        )
        self._info = Gauge(
            "modelyard_model_info",
            "Always 1; labels describe the loaded model.",
            (*BASE_LABELS, "sha256", "execution_provider", "opset"),
            registry=reg,
            multiprocess_mode="max",
        )
        self._load = Gauge(
            "modelyard_model_load_duration_seconds",
            "Seconds each startup stage took.",
            (*BASE_LABELS, "stage"),
            registry=reg,
            multiprocess_mode="max",  # the slowest process
        )
        self._queue = queue.labels(*self._base)
        self._compute = compute.labels(*self._base)
        self._batch = batch.labels(*self._base)
        self._in_flight = in_flight.labels(*self._base)
        self._depth = depth.labels(*self._base)
        if self._exposed is self.registry:
            self._in_flight.set_function(lambda: 0)
            self._depth.set_function(lambda: 0)
        self._request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        for reason in REJECT_REASONS:  # present at 0 so rate() works from the first scrape
            self._rejected.labels(*self._base, reason)

    def request_done(self, protocol: str, code: int, seconds: float) -> None:
        key = (protocol, code)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self._requests.labels(*self._base, protocol, str(code)),
                self._duration.labels(*self._base, protocol),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def rejected(self, reason: str) -> None:
        self._rejected.labels(*self._base, reason).inc()

    def model_loaded(self, *, sha256: str, execution_provider: str, opset: int) -> None:
        self._info.labels(*self._base, sha256, execution_provider, str(opset)).set(1)

    def stage_took(self, stage: str, seconds: float) -> None:
        self._load.labels(*self._base, stage).set(seconds)

    def watch(self, *, in_flight: Callable[[], float], queue_depth: Callable[[], float]) -> None:
        """Read the two gauges from the server at scrape time: no cost per request."""
        if self._exposed is self.registry:
            self._in_flight.set_function(in_flight)
            self._depth.set_function(queue_depth)
        else:  # the files hold values, not functions
            self._sources = (in_flight, queue_depth)

    def sample(self) -> None:
        """Write the watched gauges' current values (multiprocess mode; a no-op otherwise)."""
        if self._sources is not None:
            self._in_flight.set(self._sources[0]())
            self._depth.set(self._sources[1]())

    # BatchObserver
    def dequeued(self, waited_seconds: float) -> None:
        self._queue.observe(waited_seconds)

    def batch_done(self, rows: int, compute_seconds: float) -> None:
        self._batch.observe(rows)
        self._compute.observe(compute_seconds)

    def exposition(self) -> bytes:
        self.sample()
        return generate_latest(self._exposed)

"""The operator <-> runtime contract (design §3, §5) and the docs that describe it."""

from __future__ import annotations

from pathlib import Path

from modelyard_runtime.metrics import RuntimeMetrics
from modelyard_runtime.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]

# design.md §3: the env the operator renders and the runtime reads.
DESIGN_ENV = {
    "MODELYARD_MODEL_NAME", "MODELYARD_MODEL_VERSION", "MODELYARD_MODEL_PATH",
    "MODELYARD_MODEL_SHA256", "MODELYARD_REVISION", "MODELYARD_TRACK",
    "MODELYARD_EXECUTION_PROVIDER", "MODELYARD_REQUIRE_GPU", "MODELYARD_MAX_BATCH_SIZE",
    "MODELYARD_MAX_QUEUE_DELAY_MS", "MODELYARD_MAX_QUEUE_SIZE", "MODELYARD_REQUEST_TIMEOUT_MS",
    "MODELYARD_INTRA_OP_THREADS", "MODELYARD_WARMUP", "MODELYARD_AUTH_TOKEN_FILE",
    "POD_NAME", "POD_NAMESPACE",
}  # fmt: skip

# design.md §5: runtime metric names.
DESIGN_METRICS = {
    "modelyard_requests_total", "modelyard_request_duration_seconds",
    "modelyard_queue_duration_seconds", "modelyard_compute_duration_seconds",
    "modelyard_batch_size", "modelyard_requests_in_flight", "modelyard_queue_depth",
    "modelyard_rejected_requests_total", "modelyard_model_info",
    "modelyard_model_load_duration_seconds",
}  # fmt: skip


def exported_metric_names() -> set[str]:
    metrics = RuntimeMetrics(model="m", version="1", revision="r", track="stable")
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def test_runtime_reads_every_design_env_variable() -> None:
    assert set(ENV_NAMES.values()) >= DESIGN_ENV


def test_runtime_exports_exactly_the_design_metrics() -> None:
    assert exported_metric_names() == DESIGN_METRICS


def test_docs_describe_every_setting_and_metric() -> None:
    docs = (ROOT / "docs" / "runtime.md").read_text()
    missing_env = sorted(env for env in ENV_NAMES.values() if f"`{env}`" not in docs)
    missing_metrics = sorted(name for name in DESIGN_METRICS if f"`{name}`" not in docs)
    assert not missing_env, f"docs/runtime.md lacks {missing_env}"
    assert not missing_metrics, f"docs/runtime.md lacks {missing_metrics}"

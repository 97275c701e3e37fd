"""Runtime settings: parsed once from env and flags into one frozen object.

Every setting has an env variable (the operator <-> runtime contract, design §3) and the same
flag on the CLI; a flag wins over its env variable. ``to_env`` renders settings back into env,
so the operator and the runtime share one definition and a contract test proves the round trip.
Called from ``cli``; nothing here reads files or starts anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from modelyard_runtime.errors import SettingsError

PROVIDERS: Final = ("auto", "cpu", "cuda", "tensorrt")
DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"
MAX_PROCESSES: Final = 64
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the server needs to know, validated."""

    model_path: str
    model_name: str = ""
    model_version: str = "1"
    model_sha256: str = ""
    revision: str = ""
    track: str = "stable"
    host: str = "0.0.0.0"
    http_port: int = 8080
    grpc_port: int = 8081
    metrics_port: int | None = None  # None: /metrics on the HTTP port
    execution_provider: str = "auto"
    require_gpu: bool = False
    max_batch_size: int = 64
    max_queue_delay_ms: float = 0.0
    max_queue_size: int = 1024
    request_timeout_ms: int = 60_000
    intra_op_threads: int = 0
    inference_workers: int = 1
    processes: int = 0  # 0: auto (``sizing.plan``)
    warmup: tuple[int, ...] = (1,)
    auth_token_file: str = ""
    model_key_file: str = ""
    termination_log: str = ""
    shutdown_grace_seconds: float = 30.0
    drain_delay_seconds: float = 5.0
    max_connection_age_seconds: float = 30.0
    max_request_bytes: int = 64 * 1024 * 1024
    max_request_rows: int = 4096  # 0: no limit
    body_timeout_seconds: float = 30.0  # 0: no limit
    keepalive_timeout_seconds: float = 75.0
    decode_thread_bytes: int = 256 * 1024
    decode_process_bytes: int = 8 * 1024 * 1024  # 0: never
    cpu_memory_arena: bool = False
    pod_name: str = ""
    pod_namespace: str = ""
    log_level: str = "INFO"

    @property
    def served_name(self) -> str:
        """The model name in the protocol: explicit, else the file's stem."""
        return self.model_name or Path(self.model_path).stem


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,8"`` or ``"1 8"`` -> (1, 8); ``""`` or ``"none"`` -> no warm-up."""
    if text.strip().lower() in {"", "none"}:
        return ()
    sizes = tuple(int(part) for part in re.split(r"[,\s]+", text.strip()) if part)
    if any(size < 1 for size in sizes):
        raise ValueError("batch sizes must be positive integers")
    return tuple(sorted(set(sizes)))


def _parse_optional_port(text: str) -> int | None:
    """``""`` or ``"none"`` -> None (no port of its own); else the port number."""
    if text.strip().lower() in {"", "none"}:
        return None
    return int(text)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    env: str
    flag: str
    parse: Callable[[str], Any]
    help: str


_FIELDS: Final[tuple[_Field, ...]] = (
    _Field("model_path", "MODELYARD_MODEL_PATH", "--model", str, "path of the .onnx file"),
    _Field("model_name", "MODELYARD_MODEL_NAME", "--name", str, "model name in the protocol"),
    _Field("model_version", "MODELYARD_MODEL_VERSION", "--model-version", str, "version label"),
    _Field("model_sha256", "MODELYARD_MODEL_SHA256", "--sha256", str, "expected sha256 digest"),
    _Field("revision", "MODELYARD_REVISION", "--revision", str, "revision metric label"),
    _Field("track", "MODELYARD_TRACK", "--track", str, "track metric label (stable|canary)"),
    _Field("host", "MODELYARD_HOST", "--host", str, "address to listen on"),
    _Field("http_port", "MODELYARD_HTTP_PORT", "--http-port", int, "HTTP port (0 = pick one)"),
    _Field("grpc_port", "MODELYARD_GRPC_PORT", "--grpc-port", int, "gRPC port (0 = pick one)"),
    _Field(
        "metrics_port",
        "MODELYARD_METRICS_PORT",
        "--metrics-port",
        _parse_optional_port,
        "serve /metrics on this port only (0 = pick one); unset = on the HTTP port",
    ),
    _Field(
        "execution_provider",
        "MODELYARD_EXECUTION_PROVIDER",
        "--execution-provider",
        str,
        "auto|cpu|cuda|tensorrt",
    ),
    _Field(
        "require_gpu",
        "MODELYARD_REQUIRE_GPU",
        "--require-gpu",
        _parse_bool,
        "not Ready unless a GPU provider is active",
    ),
    _Field("max_batch_size", "MODELYARD_MAX_BATCH_SIZE", "--max-batch-size", int, "rows per batch"),
    _Field(
        "max_queue_delay_ms",
        "MODELYARD_MAX_QUEUE_DELAY_MS",
        "--max-queue-delay-ms",
        float,
        "longest wait for a fuller batch, in ms",
    ),
    _Field(
        "max_queue_size",
        "MODELYARD_MAX_QUEUE_SIZE",
        "--max-queue-size",
        int,
        "queued requests before 429",
    ),
    _Field(
        "request_timeout_ms",
        "MODELYARD_REQUEST_TIMEOUT_MS",
        "--request-timeout-ms",
        int,
        "per-request deadline in ms (0 = none)",
    ),
    _Field(
        "intra_op_threads",
        "MODELYARD_INTRA_OP_THREADS",
        "--intra-op-threads",
        int,
        "onnxruntime intra-op threads (0 = the CPU limit, else onnxruntime's default)",
    ),
    _Field(
        "inference_workers",
        "MODELYARD_INFERENCE_WORKERS",
        "--inference-workers",
        int,
        "batches run at once",
    ),
    _Field(
        "processes",
        "MODELYARD_PROCESSES",
        "--processes",
        int,
        "server processes sharing the ports, each with its own session "
        "(0 = auto: one per CPU of the pod on the CPU, one on a GPU)",
    ),
    _Field(
        "warmup",
        "MODELYARD_WARMUP",
        "--warmup",
        _parse_batch_sizes,
        "batch sizes to run before Ready, e.g. 1,8 (none = skip)",
    ),
    _Field(
        "auth_token_file",
        "MODELYARD_AUTH_TOKEN_FILE",
        "--auth-token-file",
        str,
        "bearer token file; unset = no auth",
    ),
    _Field(
        "model_key_file",
        "MODELYARD_MODEL_KEY_FILE",
        "--model-key-file",
        str,
        "AES-256 key file of an encrypted model (decrypted in memory); unset = plaintext model",
    ),
    _Field(
        "termination_log",
        "MODELYARD_TERMINATION_LOG",
        "--termination-log",
        str,
        f"where fatal startup errors are written (default {DEFAULT_TERMINATION_LOG} if writable)",
    ),
    _Field(
        "shutdown_grace_seconds",
        "MODELYARD_SHUTDOWN_GRACE_SECONDS",
        "--shutdown-grace-seconds",
        float,
        "longest drain after SIGTERM",
    ),
    _Field(
        "drain_delay_seconds",
        "MODELYARD_DRAIN_DELAY_SECONDS",
        "--drain-delay-seconds",
        float,
        "after SIGTERM, keep accepting connections this long (at most the grace) while the "
        "endpoints update",
    ),
    _Field(
        "max_connection_age_seconds",
        "MODELYARD_MAX_CONNECTION_AGE_SECONDS",
        "--max-connection-age-seconds",
        float,
        "end kept-alive connections after this age so clients rebalance (0 = never)",
    ),
    _Field(
        "max_request_bytes",
        "MODELYARD_MAX_REQUEST_BYTES",
        "--max-request-bytes",
        int,
        "largest request body (413 above)",
    ),
    _Field(
        "max_request_rows",
        "MODELYARD_MAX_REQUEST_ROWS",
        "--max-request-rows",
        int,
        "most rows (first dimension) in one request of a batchable model (413 above; 0 = no limit)",
    ),
    _Field(
        "body_timeout_seconds",
        "MODELYARD_BODY_TIMEOUT_SECONDS",
        "--body-timeout-seconds",
        float,
        "longest time to receive a request body (408 after; 0 = no limit)",
    ),
    _Field(
        "keepalive_timeout_seconds",
        "MODELYARD_KEEPALIVE_TIMEOUT_SECONDS",
        "--keepalive-timeout-seconds",
        float,
        "close an HTTP connection idle this long between requests",
    ),
    _Field(
        "decode_thread_bytes",
        "MODELYARD_DECODE_THREAD_BYTES",
        "--decode-thread-bytes",
        int,
        "decode (and inflate) request bodies of at least this many bytes in a thread, off the "
        "event loop (0 = every body)",
    ),
    _Field(
        "decode_process_bytes",
        "MODELYARD_DECODE_PROCESS_BYTES",
        "--decode-process-bytes",
        int,
        "decode REST request bodies of at least this many bytes in a child process, so the "
        "server keeps neither the stall nor the memory (0 = never)",
    ),
    _Field(
        "cpu_memory_arena",
        "MODELYARD_CPU_MEMORY_ARENA",
        "--cpu-memory-arena",
        _parse_bool,
        "onnxruntime's CPU memory arena (keeps the largest batch's memory for the process's life)",
    ),
    _Field("pod_name", "POD_NAME", "--pod-name", str, "pod name (downward API)"),
    _Field("pod_namespace", "POD_NAMESPACE", "--pod-namespace", str, "pod namespace"),
    _Field("log_level", "MODELYARD_LOG_LEVEL", "--log-level", str, "DEBUG|INFO|WARNING|ERROR"),
)

ENV_NAMES: Final[dict[str, str]] = {field.name: field.env for field in _FIELDS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting; values stay strings until ``settings_from`` parses them."""
    for field in _FIELDS:
        parser.add_argument(
            field.flag, dest=field.name, default=None, help=f"{field.help} [env {field.env}]"
        )


def settings_from(args: argparse.Namespace | None, environ: Mapping[str, str]) -> Settings:
    """Merge flags over env over defaults, parse, validate; ``SettingsError`` names the bad one."""
    values: dict[str, Any] = {}
    for field in _FIELDS:
        raw = getattr(args, field.name, None) if args is not None else None
        source = field.flag
        if raw is None:
            raw = environ.get(field.env)
            source = field.env
        if raw is None:
            continue
        try:
            values[field.name] = field.parse(raw)
        except ValueError as e:
            raise SettingsError(f"{source}={raw!r} is invalid: {e}") from e
    if not values.get("model_path"):
        raise SettingsError("no model given: set --model or MODELYARD_MODEL_PATH")
    if "termination_log" not in values:
        values["termination_log"] = default_termination_log()
    settings = Settings(**values)
    validate(settings)
    return settings


def default_termination_log() -> str:
    path = Path(DEFAULT_TERMINATION_LOG)
    writable = path.exists() and os.access(path, os.W_OK)
    writable = writable or (not path.exists() and os.access(path.parent, os.W_OK))
    return DEFAULT_TERMINATION_LOG if writable and path.parent.is_dir() else ""


def validate(settings: Settings) -> None:
    """Raise ``SettingsError`` for the first value that cannot work."""
    checks: Sequence[tuple[bool, str]] = (
        (
            settings.execution_provider in PROVIDERS,
            f"execution provider {settings.execution_provider!r} is not one of "
            + ", ".join(PROVIDERS),
        ),
        (
            not settings.model_sha256 or bool(_SHA256.match(settings.model_sha256)),
            "sha256 must be 64 lowercase hex characters",
        ),
        (0 <= settings.http_port <= 65535, "http port must be 0..65535"),
        (0 <= settings.grpc_port <= 65535, "grpc port must be 0..65535"),
        (
            settings.metrics_port is None or 0 <= settings.metrics_port <= 65535,
            "metrics port must be 0..65535",
        ),
        (
            not settings.metrics_port
            or settings.metrics_port not in {settings.http_port, settings.grpc_port},
            "metrics port must differ from the http and grpc ports",
        ),
        (
            settings.metrics_port != 0 or settings.processes <= 1,
            "metrics port 0 (pick one) needs processes 1: several processes share fixed ports",
        ),
        (settings.max_batch_size >= 1, "max batch size must be at least 1"),
        (settings.max_queue_delay_ms >= 0, "max queue delay must not be negative"),
        (settings.max_queue_size >= 1, "max queue size must be at least 1"),
        (settings.request_timeout_ms >= 0, "request timeout must not be negative"),
        (settings.intra_op_threads >= 0, "intra-op threads must not be negative"),
        (settings.inference_workers >= 1, "inference workers must be at least 1"),
        (
            0 <= settings.processes <= MAX_PROCESSES,
            f"processes must be 0 (auto) or 1..{MAX_PROCESSES}",
        ),
        (settings.shutdown_grace_seconds >= 0, "shutdown grace must not be negative"),
        (settings.drain_delay_seconds >= 0, "drain delay must not be negative"),
        (settings.max_connection_age_seconds >= 0, "max connection age must not be negative"),
        (settings.max_request_bytes >= 1024, "max request bytes must be at least 1024"),
        (settings.max_request_rows >= 0, "max request rows must not be negative"),
        (settings.body_timeout_seconds >= 0, "body timeout must not be negative"),
        (settings.keepalive_timeout_seconds > 0, "keep-alive timeout must be positive"),
        (settings.decode_thread_bytes >= 0, "decode thread bytes must not be negative"),
        (settings.decode_process_bytes >= 0, "decode process bytes must not be negative"),
        (
            settings.log_level.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"},
            "log level must be DEBUG, INFO, WARNING or ERROR",
        ),
        (bool(settings.model_version), "model version must not be empty"),
        (
            bool(settings.served_name) and not set(settings.served_name) & set("/:?#"),
            "model name must be non-empty and contain none of / : ? #",
        ),
    )
    for ok, message in checks:
        if not ok:
            raise SettingsError(message)


def to_env(settings: Settings) -> dict[str, str]:
    """Render the settings that differ from the defaults as the env the runtime reads."""
    defaults = Settings(model_path=settings.model_path)
    env = {ENV_NAMES["model_path"]: settings.model_path}
    for field in _FIELDS:
        value = getattr(settings, field.name)
        if value != getattr(defaults, field.name):
            env[field.env] = _format_value(value)
    return dict(sorted(env.items()))

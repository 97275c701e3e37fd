"""Settings: env and flags parse into one frozen object; bad values are named."""

from __future__ import annotations

import dataclasses

import pytest

from modelyard_runtime.cli import build_parser
from modelyard_runtime.errors import SettingsError
from modelyard_runtime.settings import Settings, settings_from, to_env


def parse(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    args = build_parser().parse_args(["serve", *argv])
    return settings_from(args, env or {})


def test_issue_flags_are_accepted() -> None:
    settings = parse(
        [
            "--model", "/m/model.onnx", "--name", "mlp", "--model-version", "v3",
            "--host", "127.0.0.1", "--http-port", "0", "--max-batch-size", "16",
            "--max-queue-delay-ms", "2.5", "--max-queue-size", "100",
            "--execution-provider", "cpu", "--intra-op-threads", "1",
        ]
    )  # fmt: skip
    assert settings.model_path == "/m/model.onnx"
    assert settings.served_name == "mlp"
    assert settings.model_version == "v3"
    assert (settings.host, settings.http_port) == ("127.0.0.1", 0)
    assert settings.max_batch_size == 16
    assert settings.max_queue_delay_ms == 2.5
    assert settings.max_queue_size == 100
    assert settings.execution_provider == "cpu"
    assert settings.intra_op_threads == 1


def test_env_configures_and_flags_win() -> None:
    env = {
        "MODELYARD_MODEL_PATH": "/m/a.onnx",
        "MODELYARD_MAX_BATCH_SIZE": "8",
        "MODELYARD_REQUIRE_GPU": "true",
        "MODELYARD_WARMUP": "8,1 8",
    }
    settings = parse(["--max-batch-size", "32"], env)
    assert settings.model_path == "/m/a.onnx"
    assert settings.max_batch_size == 32
    assert settings.require_gpu is True
    assert settings.warmup == (1, 8)


def test_model_name_defaults_to_the_file_stem() -> None:
    assert parse(["--model", "/models/resnet50.onnx"]).served_name == "resnet50"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no model given"),
        (["--model", "m.onnx", "--execution-provider", "rocm"], "execution provider 'rocm'"),
        (["--model", "m.onnx", "--max-batch-size", "0"], "max batch size"),
        (["--model", "m.onnx", "--max-batch-size", "many"], "--max-batch-size='many'"),
        (["--model", "m.onnx", "--sha256", "abc"], "sha256 must be 64"),
        (["--model", "m.onnx", "--http-port", "70000"], "http port"),
        (["--model", "m.onnx", "--require-gpu", "maybe"], "--require-gpu='maybe'"),
        (["--model", "m.onnx", "--warmup", "0"], "--warmup='0'"),
        (["--model", "m.onnx", "--name", "a:b"], "model name"),
        (["--model", "m.onnx", "--processes", "-1"], r"processes must be 0 \(auto\) or 1..64"),
        (["--model", "m.onnx", "--processes", "65"], r"processes must be 0 \(auto\) or 1..64"),
        (["--model", "m.onnx", "--drain-delay-seconds", "-1"], "drain delay"),
        (["--model", "m.onnx", "--max-connection-age-seconds", "-2"], "max connection age"),
        (["--model", "m.onnx", "--max-request-rows", "-1"], "max request rows"),
        (["--model", "m.onnx", "--body-timeout-seconds", "-1"], "body timeout"),
        (["--model", "m.onnx", "--keepalive-timeout-seconds", "0"], "keep-alive timeout"),
        (["--model", "m.onnx", "--decode-thread-bytes", "-1"], "decode thread bytes"),
        (["--model", "m.onnx", "--cpu-memory-arena", "maybe"], "--cpu-memory-arena='maybe'"),
    ],
)
def test_bad_values_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse(argv)


def test_env_round_trip_is_exact() -> None:
    original = Settings(
        model_path="/models/m.onnx",
        model_name="m",
        model_version="v7",
        model_sha256="a" * 64,
        revision="abc123",
        track="canary",
        execution_provider="cuda",
        require_gpu=True,
        max_batch_size=16,
        max_queue_delay_ms=1.5,
        warmup=(1, 4, 16),
        termination_log="/dev/termination-log",
        auth_token_file="/var/run/token",
        max_request_rows=0,
        body_timeout_seconds=2.5,
        keepalive_timeout_seconds=5.0,
        decode_thread_bytes=0,
        decode_process_bytes=1 << 20,
        cpu_memory_arena=True,
    )
    env = to_env(original)
    assert env["MODELYARD_TRACK"] == "canary"
    assert env["MODELYARD_WARMUP"] == "1,4,16"
    assert settings_from(None, env) == original
    assert dataclasses.replace(original, track="stable") != original

"""Startup in a real process: fatal failures name their stage in the termination log."""

from __future__ import annotations

import hashlib
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from hack.testbed import onnx_models
from hack.testbed.processes import RuntimeProcess

pytestmark = pytest.mark.slow


def start(model: Path, tmp_path: Path, *extra: str) -> tuple[RuntimeProcess, Path]:
    log = tmp_path / "termination-log"
    args = ["--model", str(model), "--host", "127.0.0.1", "--http-port", "0"]
    return RuntimeProcess([*args, "--termination-log", str(log), *extra]), log


def fails_at(model: Path, tmp_path: Path, *extra: str) -> str:
    process, log = start(model, tmp_path, *extra)
    try:
        assert process.wait(60) == 1, process.log
    finally:
        process.kill()
    return log.read_text().strip()


def test_missing_model_file(tmp_path: Path) -> None:
    message = fails_at(tmp_path / "absent.onnx", tmp_path)
    assert message.startswith("load: model file ")
    assert message.endswith("absent.onnx does not exist")


@pytest.mark.parametrize("content", [b"this is not a model", b"\x00\x01garbage" * 100])
def test_file_that_is_not_onnx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    message = fails_at(path, tmp_path)
    assert message.startswith("load: ")
    assert "is not an ONNX model" in message


def test_truncated_model(tmp_path: Path, models: dict[str, Path]) -> None:
    data = models["mlp"].read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert fails_at(path, tmp_path).startswith("load: ")


def test_digest_mismatch_refuses_to_serve(tmp_path: Path, models: dict[str, Path]) -> None:
    actual = hashlib.sha256(models["tiny"].read_bytes()).hexdigest()
    message = fails_at(models["tiny"], tmp_path, "--sha256", "0" * 64)
    assert message == f"verify: sha256 of {models['tiny']} is {actual}, expected {'0' * 64}"


def test_matching_digest_serves(tmp_path: Path, models: dict[str, Path]) -> None:
    digest = hashlib.sha256(models["tiny"].read_bytes()).hexdigest()
    process, log = start(models["tiny"], tmp_path, "--sha256", digest)
    try:
        process.wait_ready()
    finally:
        process.terminate()
        assert process.wait() == 0
    assert not log.exists()


def test_warmup_failure(tmp_path: Path) -> None:
    model = onnx_models.reshape_model(tmp_path / "reshape.onnx")
    message = fails_at(model, tmp_path, "--warmup", "1,8")
    assert message.startswith("warmup: batch size 8 failed")


def test_bad_setting_exits_2_with_the_reason(tmp_path: Path, models: dict[str, Path]) -> None:
    process, log = start(models["tiny"], tmp_path, "--max-queue-size", "0")
    assert process.wait(30) == 2
    assert "max queue size must be at least 1" in process.log
    assert log.read_text().startswith("settings: ")


def test_empty_token_file_is_a_startup_error(tmp_path: Path, models: dict[str, Path]) -> None:
    token = tmp_path / "token"
    token.write_text("\n")
    process, log = start(models["tiny"], tmp_path, "--auth-token-file", str(token))
    assert process.wait(30) == 2
    assert "is empty" in log.read_text()


def test_require_gpu_on_a_cpu_host_is_alive_but_never_ready(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    process, _ = start(models["tiny"], tmp_path, "--require-gpu", "true")
    try:
        url = process.url()
        process.wait_for("not ready: a GPU is required")
        with urllib.request.urlopen(url + "/v2/health/live", timeout=10) as live:
            assert live.status == 200
        deadline = time.monotonic() + 30
        while True:  # each of the pod's processes answers 503; once loaded, with the reason
            with pytest.raises(urllib.error.HTTPError) as ready:
                urllib.request.urlopen(url + "/v2/health/ready", timeout=10)
            assert ready.value.code == 503
            reason = orjson.loads(ready.value.read())["reason"]
            if "GPU is required" in reason:
                break
            assert reason == "the model is loading"
            assert time.monotonic() < deadline, process.log
    finally:
        process.terminate()
        assert process.wait() == 0, process.log


def test_auto_provider_on_a_cpu_host_is_quiet(tmp_path: Path, models: dict[str, Path]) -> None:
    process, _ = start(models["tiny"], tmp_path, "--execution-provider", "auto")
    try:
        process.wait_ready()
        assert "on cpu" in process.log
    finally:
        process.terminate()
        assert process.wait() == 0
    assert "CUDA" not in process.log
    assert "[E:onnxruntime" not in process.log


def test_port_in_use_is_a_clear_listen_error(tmp_path: Path, models: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = fails_at(models["tiny"], tmp_path, "--grpc-port", str(port))
    assert message.startswith("listen: cannot listen on 127.0.0.1")
    assert f"grpc {port}" in message

"""Startup of an encrypted model: decrypted in memory and served, or the ``decrypt`` stage."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from modelyard_runtime.contract import sealing
from modelyard_runtime.errors import StartupError
from modelyard_runtime.metrics import RuntimeMetrics
from modelyard_runtime.session import ModelSession
from modelyard_runtime.settings import Settings
from modelyard_runtime.startup import prepare

KEY = sealing.generate_key()
SEGMENT = 32  # the tiny model spans several segments


def encrypt(model: Path, out: Path, key: bytes = KEY) -> Path:
    with model.open("rb") as source, out.open("wb") as sink:
        sealing.encrypt(source, sink, key, segment=SEGMENT)
    return out


@pytest.fixture
def sealed(models: dict[str, Path], tmp_path: Path) -> tuple[Path, Path]:
    """(encrypted tiny model, its key file)."""
    key_file = tmp_path / "key"
    key_file.write_bytes(sealing.encode_key(KEY))
    return encrypt(models["tiny"], tmp_path / "tiny.onnx.enc"), key_file


def metrics() -> RuntimeMetrics:
    return RuntimeMetrics(model="m", version="1", revision="r", track="stable")


def load(model: Path, key_file: Path | None, sha256: str = "") -> ModelSession:
    values = Settings(
        model_path=str(model), model_key_file=str(key_file or ""), model_sha256=sha256
    )
    return prepare(values, metrics()).session


def stage_of(model: Path, key_file: Path | None, sha256: str = "") -> StartupError:
    with pytest.raises(StartupError) as caught:
        load(model, key_file, sha256)
    return caught.value


def test_encrypted_model_is_served_from_memory(sealed: tuple[Path, Path]) -> None:
    model, key_file = sealed
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    collected = metrics()
    settings = Settings(model_path=str(model), model_key_file=str(key_file), model_sha256=digest)
    session = prepare(settings, collected).session
    (double, total) = session.run({"x": np.array([[1, 2, 3, 4]], dtype=np.float32)})
    assert double.tolist() == [[2, 4, 6, 8]]
    assert total.tolist() == [10]
    stages = {s.labels["stage"] for f in collected.registry.collect() for s in f.samples
              if f.name == "modelyard_model_load_duration_seconds"}  # fmt: skip
    assert stages == {"verify", "decrypt", "load", "warmup"}


def test_wrong_key(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    other = tmp_path / "other-key"
    other.write_bytes(sealing.encode_key(sealing.generate_key()))
    error = stage_of(sealed[0], other)
    assert error.stage == "decrypt"
    assert error.message.startswith(f"cannot decrypt {sealed[0]}: wrong key: it was encrypted")


def test_truncated_ciphertext(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    model, key_file = sealed
    assert model.stat().st_size > sealing.HEADER_BYTES + 3 * (SEGMENT + sealing.TAG_BYTES)
    cut = tmp_path / "cut.onnx.enc"
    cut.write_bytes(model.read_bytes()[: sealing.HEADER_BYTES + 2 * (SEGMENT + sealing.TAG_BYTES)])
    error = stage_of(cut, key_file)
    assert error.stage == "decrypt"
    assert "it is truncated: it ends after segment 2" in error.message


def test_digest_is_checked_before_decrypting(sealed: tuple[Path, Path]) -> None:
    error = stage_of(*sealed, sha256="0" * 64)
    assert error.stage == "verify"


def test_missing_key_file(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    error = stage_of(sealed[0], tmp_path / "absent")
    assert error.stage == "decrypt"
    assert error.message.startswith(f"cannot read the model key {tmp_path / 'absent'}")


def test_unusable_key_file(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "bad").write_text("hunter2\n")
    error = stage_of(sealed[0], tmp_path / "bad")
    assert (error.stage, "is unusable" in error.message) == ("decrypt", True)


def test_encrypted_model_without_a_key(sealed: tuple[Path, Path]) -> None:
    error = stage_of(sealed[0], None)
    assert error.stage == "decrypt"
    assert "is an encrypted model but no key is configured" in error.message


def test_a_plaintext_model_with_a_key(models: dict[str, Path], sealed: tuple[Path, Path]) -> None:
    error = stage_of(models["tiny"], sealed[1])
    assert error.stage == "decrypt"
    assert "not an encrypted modelyard model" in error.message


def test_decrypted_garbage_is_a_load_failure(tmp_path: Path, sealed: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.enc"
    with junk.open("wb") as sink:
        sealing.encrypt(io.BytesIO(b"not a model at all"), sink, KEY)
    error = stage_of(junk, sealed[1])
    assert error.stage == "load"
    assert f"{junk} (decrypted in memory) is not an ONNX model" in error.message

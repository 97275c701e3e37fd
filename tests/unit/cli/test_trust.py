"""`modelyard keygen`, `sign`, `verify` and `encrypt` as a user runs them."""

from __future__ import annotations

import hashlib
import io
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard_runtime.contract import sealing, signing

MODEL = b"\x08\x07 an onnx model's bytes " * 200


def modelyard(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard_cli", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def ok(*args: str | Path) -> str:
    result = modelyard(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def error(*args: str | Path) -> str:
    result = modelyard(*args)
    assert result.returncode == 1, result.stdout
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    return line


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(MODEL)
    return path


def test_sign_then_verify(model: Path, tmp_path: Path) -> None:
    printed = ok("keygen", "signing", "--out", tmp_path / "keys" / "release")
    private, public = tmp_path / "keys" / "release.key", tmp_path / "keys" / "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    kid = signing.key_id(signing.load_public_key(public.read_bytes()))
    assert kid in printed
    out = ok("sign", model, "--key", private)
    assert hashlib.sha256(MODEL).hexdigest() in out
    assert (tmp_path / "model.onnx.sig").is_file()
    assert "signature OK" in ok("verify", model, "--public-key", public)

    model.write_bytes(MODEL + b"backdoor")
    line = error("verify", model, "--public-key", public)
    assert line.startswith("modelyard verify: error: signature ")
    assert "the model changed after it was signed" in line


def test_verify_with_another_key_or_without_a_signature(model: Path, tmp_path: Path) -> None:
    ok("keygen", "signing", "--out", tmp_path / "a")
    ok("keygen", "signing", "--out", tmp_path / "b")
    ok("sign", model, "--key", tmp_path / "a.key")
    assert "not with the trusted public key" in error("verify", model, "--public-key",
                                                      tmp_path / "b.pub")  # fmt: skip
    (tmp_path / "model.onnx.sig").unlink()
    assert "cannot read the signature" in error("verify", model, "--public-key", tmp_path / "a.pub")


def test_keys_are_never_overwritten(tmp_path: Path) -> None:
    ok("keygen", "encryption", "--out", tmp_path / "model.key")
    before = (tmp_path / "model.key").read_bytes()
    assert "exists: keys are never overwritten" in error("keygen", "encryption", "--out",
                                                         tmp_path / "model.key")  # fmt: skip
    assert (tmp_path / "model.key").read_bytes() == before
    (tmp_path / "s.pub").write_text("someone else's")
    assert "exists" in error("keygen", "signing", "--out", tmp_path / "s")
    assert not (tmp_path / "s.key").exists()


def test_encrypt_writes_what_the_runtime_decrypts(model: Path, tmp_path: Path) -> None:
    ok("keygen", "encryption", "--out", tmp_path / "model.key")
    assert stat.S_IMODE((tmp_path / "model.key").stat().st_mode) == 0o600
    out = ok("encrypt", model, "--key", tmp_path / "model.key")
    encrypted = tmp_path / "model.onnx.enc"
    assert hashlib.sha256(encrypted.read_bytes()).hexdigest() in out
    key = sealing.parse_key((tmp_path / "model.key").read_bytes())
    assert sealing.decrypt(io.BytesIO(encrypted.read_bytes()), key) == MODEL
    assert "is already encrypted" in error("encrypt", encrypted, "--key", tmp_path / "model.key",
                                           "--out", tmp_path / "twice")  # fmt: skip
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sign", "{model}", "--key", "{tmp}/absent.key"), "cannot read the private key"),
        (("sign", "{model}", "--key", "{model}"), "not a PEM private key"),
        (("encrypt", "{model}", "--key", "{model}"), "not a 32-byte AES-256 key"),
        (("verify", "{model}", "--public-key", "{model}"), "not a PEM public key"),
    ],
)
def test_bad_keys_are_one_clear_line(
    model: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    line = error(*(a.format(model=model, tmp=tmp_path) for a in args))
    assert message in line

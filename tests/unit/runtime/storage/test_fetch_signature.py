"""``fetch --public-key``: a signed model is downloaded only when its signature verifies."""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard_runtime.contract import signing
from modelyard_runtime.storage.fetch import FetchError, fetch, signature_uri

PAYLOAD = b"signed onnx bytes " * 500
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return signing.generate()


@pytest.fixture
def store(tmp_path: Path, keys: tuple[bytes, bytes]) -> Path:
    """A directory with model.onnx, its signature, and the trusted public key."""
    root = tmp_path / "store"
    root.mkdir()
    (root / "model.onnx").write_bytes(PAYLOAD)
    key = signing.load_private_key(keys[0])
    document = signing.sign(key, sha256=DIGEST, size=len(PAYLOAD)).to_json()
    (root / "model.onnx.sig").write_bytes(document)
    (tmp_path / "public.pem").write_bytes(keys[1])
    return root


def fails(uri: str, out: Path, public_key: Path, **kwargs: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(uri, out, public_key=public_key, environ={}, **kwargs)
    assert not out.exists()
    assert list(out.parent.glob("*.partial")) == []
    return caught.value


def test_signed_model_is_fetched(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "model.onnx"
    digest = fetch(f"file://{store}/model.onnx", out, sha256=DIGEST,
                   public_key=tmp_path / "public.pem")  # fmt: skip
    assert digest == DIGEST
    assert out.read_bytes() == PAYLOAD


def test_missing_signature(store: Path, tmp_path: Path) -> None:
    (store / "model.onnx.sig").unlink()
    error = fails(f"file://{store}/model.onnx", tmp_path / "m.onnx", tmp_path / "public.pem")
    assert error.stage == "signature"
    assert error.message.startswith("no signature for the model: cannot read ")
    assert "model.onnx.sig" in error.message


def test_tampered_model(store: Path, tmp_path: Path) -> None:
    (store / "model.onnx").write_bytes(PAYLOAD.replace(b"signed", b"SIGNED", 1))
    error = fails(f"file://{store}/model.onnx", tmp_path / "m.onnx", tmp_path / "public.pem")
    assert error.stage == "signature"
    assert "the model changed after it was signed" in error.message
    assert DIGEST in error.message


def test_signed_by_another_key(store: Path, tmp_path: Path) -> None:
    (tmp_path / "public.pem").write_bytes(signing.generate()[1])
    error = fails(f"file://{store}/model.onnx", tmp_path / "m.onnx", tmp_path / "public.pem")
    assert error.stage == "signature"
    assert "not with the trusted public key" in error.message


def test_missing_public_key(store: Path, tmp_path: Path) -> None:
    error = fails(f"file://{store}/model.onnx", tmp_path / "m.onnx", tmp_path / "absent.pem")
    assert error.stage == "signature"
    assert error.message.startswith(f"no public key at {tmp_path / 'absent.pem'}")


def test_unusable_public_key(store: Path, tmp_path: Path) -> None:
    (tmp_path / "public.pem").write_text("not a key")
    error = fails(f"file://{store}/model.onnx", tmp_path / "m.onnx", tmp_path / "public.pem")
    assert (error.stage, "is unusable: not a PEM public key" in error.message) == (
        "signature",
        True,
    )


def test_garbage_signature(store: Path, tmp_path: Path) -> None:
    (store / "model.onnx.sig").write_text("{}")
    error = fails(f"file://{store}/model.onnx", tmp_path / "m.onnx", tmp_path / "public.pem")
    assert error.stage == "signature"
    assert "is not a modelyard.signature/v1 document" in error.message


def test_a_valid_signature_does_not_excuse_another_pinned_digest(
    store: Path, tmp_path: Path
) -> None:
    error = fails(f"file://{store}/model.onnx", tmp_path / "m.onnx", tmp_path / "public.pem",
                  sha256="0" * 64)  # fmt: skip
    assert error.stage == "verify"


@pytest.fixture
def http_store(store: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            return

    handler = functools.partial(Quiet, directory=str(store))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_signature_beside_the_model(http_store: str, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    assert fetch(f"{http_store}/model.onnx", out, public_key=tmp_path / "public.pem",
                 environ={}) == DIGEST  # fmt: skip
    (store / "model.onnx.sig").unlink()
    out.unlink()
    error = fails(f"{http_store}/model.onnx", out, tmp_path / "public.pem")
    assert error.stage == "signature"
    assert "model.onnx.sig: HTTP 404" in error.message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/models/m.onnx", "s3://bucket/models/m.onnx.sig"),
        ("https://host/m.onnx?x=1", "https://host/m.onnx.sig?x=1"),
        ("file:///mnt/source/m.onnx", "file:///mnt/source/m.onnx.sig"),
    ],
)
def test_signature_uri(uri: str, expected: str) -> None:
    assert signature_uri(uri) == expected


def test_cli_writes_the_signature_stage(store: Path, tmp_path: Path) -> None:
    (store / "model.onnx").write_bytes(b"swapped model")
    log = tmp_path / "termination-log"
    result = subprocess.run(
        [sys.executable, "-m", "modelyard_runtime", "fetch", "--uri", f"file://{store}/model.onnx",
         "--out", str(tmp_path / "m.onnx"), "--public-key", str(tmp_path / "public.pem"),
         "--termination-log", str(log)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert log.read_text().startswith(f"signature: signature file://{store}/model.onnx.sig: it")
    assert "the model changed after it was signed" in log.read_text()

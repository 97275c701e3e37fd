"""``modelyard-runtime fetch``: sources, digest verification, and the termination message."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard_runtime.storage.fetch import FetchError, fetch

PAYLOAD = b"onnx bytes " * 1000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def http_root(source: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving ``source``'s directory; /private needs a token."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(source.parent), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            if self.path.startswith("/private/"):
                if self.headers.get("Authorization") != "Bearer s3cret":
                    self.send_error(403, "Forbidden")
                    return
                self.path = self.path.removeprefix("/private")
            super().do_GET()

        def log_message(self, *_: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_file_source_is_copied_and_verified(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "model.onnx"
    assert fetch(f"file://{source}", out, sha256=DIGEST) == DIGEST
    assert out.read_bytes() == PAYLOAD


def test_digest_mismatch_leaves_nothing_behind(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    with pytest.raises(FetchError) as caught:
        fetch(f"file://{source}", out, sha256="0" * 64)
    assert caught.value.stage == "verify"
    assert DIGEST in str(caught.value)
    assert "0" * 64 in str(caught.value)
    assert list(tmp_path.glob("model.onnx*")) == []


def test_http_source_with_and_without_credentials(http_root: str, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    assert fetch(f"{http_root}/model.onnx", out, environ={}) == DIGEST
    with pytest.raises(FetchError, match="HTTP 403") as caught:
        fetch(f"{http_root}/private/model.onnx", out, environ={})
    assert caught.value.stage == "download"
    token = {"HTTP_AUTHORIZATION": "Bearer s3cret"}
    assert fetch(f"{http_root}/private/model.onnx", out, environ=token) == DIGEST


def test_http_not_found_is_a_download_failure(http_root: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"download: GET .*/missing.onnx: HTTP 404"):
        fetch(f"{http_root}/missing.onnx", tmp_path / "m.onnx", environ={})


@pytest.mark.parametrize("uri", ["ftp://host/m.onnx", "s3://bucket-only", "/no/scheme.onnx"])
def test_unsupported_uris_are_refused(uri: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="unsupported model URI"):
        fetch(uri, tmp_path / "m.onnx")


def test_missing_file_is_a_download_failure(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="download: cannot read"):
        fetch(f"file://{tmp_path}/absent.onnx", tmp_path / "m.onnx")


def test_cli_writes_the_stage_to_the_termination_log(source: Path, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    result = subprocess.run(
        [sys.executable, "-m", "modelyard_runtime", "fetch", "--uri", f"file://{source}",
         "--out", str(tmp_path / "m.onnx"), "--sha256", "1" * 64, "--termination-log", str(log)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert log.read_text().startswith(f"verify: sha256 of file://{source} is {DIGEST}")
    ok = subprocess.run(
        [sys.executable, "-m", "modelyard_runtime", "fetch", "--uri", f"file://{source}",
         "--out", str(tmp_path / "m.onnx"), "--sha256", DIGEST, "--termination-log", str(log)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "m.onnx").read_bytes() == PAYLOAD

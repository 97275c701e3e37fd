"""``fetch`` from s3:// and gs:// against a real S3-compatible server (moto in server mode,
started here on loopback), through the same boto3 client the init container uses."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from hack.cluster.base import free_port
from modelyard_runtime.storage.fetch import FetchError, fetch

pytestmark = pytest.mark.slow
PAYLOAD = b"\x08\x07" * 50_000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "modelyard", "AWS_SECRET_ACCESS_KEY": "modelyard-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                break
        except OSError:
            assert server.poll() is None, "moto server exited"
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)  # polling a starting server
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    client.create_bucket(Bucket="models")
    client.put_object(Bucket="models", Key="fraud/v3/model.onnx", Body=PAYLOAD)
    yield endpoint
    server.terminate()
    server.wait(30)


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_object_store_sources_download_and_verify(
    s3_endpoint: str, scheme: str, tmp_path: Path
) -> None:
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    out = tmp_path / "model.onnx"
    assert (
        fetch(f"{scheme}://models/fraud/v3/model.onnx", out, sha256=DIGEST, environ=env) == DIGEST
    )
    assert out.read_bytes() == PAYLOAD


def test_missing_object_names_the_error(s3_endpoint: str, tmp_path: Path) -> None:
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    with pytest.raises(FetchError, match=r"download: s3://models/absent.onnx: NoSuchKey") as caught:
        fetch("s3://models/absent.onnx", tmp_path / "m.onnx", environ=env)
    assert caught.value.stage == "download"


def test_cli_reads_credentials_from_env_like_the_init_container(
    s3_endpoint: str, tmp_path: Path
) -> None:
    env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    result = subprocess.run(
        [sys.executable, "-m", "modelyard_runtime", "fetch", "--uri",
         "s3://models/fraud/v3/model.onnx", "--out", str(tmp_path / "m.onnx"), "--sha256", DIGEST,
         "--termination-log", str(tmp_path / "log")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.onnx").read_bytes() == PAYLOAD

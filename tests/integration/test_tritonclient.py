"""NVIDIA's tritonclient against a running ``modelyard-runtime serve`` process.

Outputs are compared with a direct onnxruntime run of the same file.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from hack.testbed.metrics_text import value
from hack.testbed.processes import RuntimeProcess
from tests.support.reference import reference_output

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlp_server(models: dict[str, Path]) -> Iterator[str]:
    process = RuntimeProcess(
        [
            "--model", str(models["mlp"]), "--name", "mlp", "--model-version", "2",
            "--host", "127.0.0.1", "--http-port", "0", "--max-batch-size", "32",
            "--execution-provider", "cpu", "--intra-op-threads", "1", "--warmup", "1,32",
        ]
    )  # fmt: skip
    try:
        url = process.wait_ready()
        yield url.removeprefix("http://")
    finally:
        process.terminate()
        assert process.wait() == 0, process.log


@pytest.fixture
def client(mlp_server: str) -> Iterator[httpclient.InferenceServerClient]:
    triton = httpclient.InferenceServerClient(mlp_server, concurrency=8)
    yield triton
    triton.close()


def batch(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 64)).astype(np.float32)


def test_health_metadata_and_config(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("mlp")
    assert client.is_model_ready("mlp", "2")
    metadata = client.get_model_metadata("mlp")
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    config = client.get_model_config("mlp")
    assert config["max_batch_size"] == 32
    assert config["input"][0]["dims"] == [64]
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


@pytest.mark.parametrize("binary", [False, True])
def test_infer_matches_onnxruntime(
    client: httpclient.InferenceServerClient, models: dict[str, Path], binary: bool
) -> None:
    x = batch(5)
    infer_input = httpclient.InferInput("input", list(x.shape), "FP32")
    infer_input.set_data_from_numpy(x, binary_data=binary)
    output = httpclient.InferRequestedOutput("output", binary_data=binary)
    result = client.infer("mlp", [infer_input], outputs=[output], request_id="r-1")
    assert result.get_response()["id"] == "r-1"
    np.testing.assert_allclose(
        result.as_numpy("output"), reference_output(models["mlp"], x), rtol=1e-5, atol=1e-6
    )


def test_gzip_compressed_request(
    client: httpclient.InferenceServerClient, models: dict[str, Path]
) -> None:
    x = batch(2, seed=3)
    infer_input = httpclient.InferInput("input", list(x.shape), "FP32")
    infer_input.set_data_from_numpy(x, binary_data=True)
    result = client.infer("mlp", [infer_input], request_compression_algorithm="gzip")
    np.testing.assert_allclose(
        result.as_numpy("output"), reference_output(models["mlp"], x), rtol=1e-5, atol=1e-6
    )


def test_concurrent_requests_are_batched_and_each_gets_its_rows(
    client: httpclient.InferenceServerClient, models: dict[str, Path], mlp_server: str
) -> None:
    inputs = [batch(1, seed=i) for i in range(64)]
    pending = []
    for x in inputs:
        infer_input = httpclient.InferInput("input", [1, 64], "FP32")
        infer_input.set_data_from_numpy(x)
        pending.append(client.async_infer("mlp", [infer_input]))
    outputs = np.concatenate([p.get_result().as_numpy("output") for p in pending])
    expected = reference_output(models["mlp"], np.concatenate(inputs))
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    with urllib.request.urlopen(f"http://{mlp_server}/metrics", timeout=10) as response:
        text = response.read().decode()
    runs = value(text, "modelyard_batch_size_count")
    rows = value(text, "modelyard_batch_size_sum")
    assert rows / runs > 1.0, "concurrent requests were never merged into one batch"


def test_errors_reach_the_client_with_their_message(
    client: httpclient.InferenceServerClient,
) -> None:
    wrong = httpclient.InferInput("input", [1, 63], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 63), np.float32))
    with pytest.raises(InferenceServerException, match=r"model expects \[-1,64\]"):
        client.infer("mlp", [wrong])
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.get_model_metadata("resnet")

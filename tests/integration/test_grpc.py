"""NVIDIA's tritonclient.grpc and the grpc health protocol against a running server."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from hack.testbed.metrics_text import value
from hack.testbed.processes import RuntimeProcess
from modelyard_runtime.protocol.pb import inference_pb2 as pb
from modelyard_runtime.protocol.pb import inference_pb2_grpc
from tests.support.reference import reference_output

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    token = tmp_path_factory.mktemp("auth") / "token"
    token.write_text("grpc-secret\n")
    process = RuntimeProcess(
        [
            "--model", str(models["mlp"]), "--name", "mlp", "--host", "127.0.0.1",
            "--http-port", "0", "--grpc-port", "0", "--execution-provider", "cpu",
            "--auth-token-file", str(token),
        ]
    )  # fmt: skip
    try:
        process.wait_ready()
        yield process
    finally:
        process.terminate()
        assert process.wait() == 0, process.log


AUTH = {"authorization": "Bearer grpc-secret"}


@pytest.fixture
def client(server: RuntimeProcess) -> Iterator[grpcclient.InferenceServerClient]:
    triton = grpcclient.InferenceServerClient(server.grpc_address())
    yield triton
    triton.close()


def test_health_and_metadata(client: grpcclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("mlp", headers=AUTH)
    metadata = client.get_model_metadata("mlp", headers=AUTH, as_json=True)
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "64"]}]
    assert "binary_tensor_data" in client.get_server_metadata(headers=AUTH).extensions


def test_metadata_properties_name_the_provider(server: RuntimeProcess) -> None:
    with grpc.insecure_channel(server.grpc_address()) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        request = pb.ModelMetadataRequest(name="mlp")
        metadata = stub.ModelMetadata(request, metadata=tuple(AUTH.items()), timeout=10)
    assert metadata.properties["execution_provider"] == "cpu"
    assert len(metadata.properties["sha256"]) == 64


def test_infer_matches_onnxruntime(
    client: grpcclient.InferenceServerClient, models: dict[str, Path]
) -> None:
    x = np.random.default_rng(4).standard_normal((3, 64)).astype(np.float32)
    tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer("mlp", [tensor], request_id="g-1", headers=AUTH)
    assert result.get_response().id == "g-1"
    np.testing.assert_allclose(
        result.as_numpy("output"), reference_output(models["mlp"], x), rtol=1e-5, atol=1e-6
    )


def test_typed_contents_work_too(server: RuntimeProcess, models: dict[str, Path]) -> None:
    x = np.random.default_rng(5).standard_normal((2, 64)).astype(np.float32)
    with grpc.insecure_channel(server.grpc_address()) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        request = pb.ModelInferRequest(model_name="mlp")
        request.inputs.add(
            name="input", datatype="FP32", shape=[2, 64]
        ).contents.fp32_contents.extend(x.ravel().tolist())
        response = stub.ModelInfer(request, metadata=tuple(AUTH.items()), timeout=10)
    out = np.frombuffer(response.raw_output_contents[0], np.float32).reshape(2, 10)
    np.testing.assert_allclose(out, reference_output(models["mlp"], x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "shape", "headers", "status", "message"),
    [
        ("mlp", [1, 63], AUTH, "StatusCode.INVALID_ARGUMENT", r"model expects \[-1,64\]"),
        ("other", [1, 64], AUTH, "StatusCode.NOT_FOUND", "unknown model 'other'"),
        ("mlp", [1, 64], {}, "StatusCode.UNAUTHENTICATED", "missing bearer token"),
        ("mlp", [1, 64], {"authorization": "Bearer no"}, "StatusCode.UNAUTHENTICATED", "invalid"),
    ],
)
def test_errors_map_to_grpc_codes(
    client: grpcclient.InferenceServerClient,
    model: str,
    shape: list[int],
    headers: dict[str, str],
    status: str,
    message: str,
) -> None:
    tensor = grpcclient.InferInput("input", shape, "FP32")
    tensor.set_data_from_numpy(np.zeros(shape, np.float32))
    with pytest.raises(InferenceServerException, match=message) as error:
        client.infer(model, [tensor], headers=headers)
    assert error.value.status() == status


def test_grpc_health_service_is_serving(server: RuntimeProcess) -> None:
    with grpc.insecure_channel(server.grpc_address()) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_grpc_requests_are_counted_with_protocol_grpc(
    client: grpcclient.InferenceServerClient, server: RuntimeProcess
) -> None:
    tensor = grpcclient.InferInput("input", [1, 64], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 64), np.float32))
    client.infer("mlp", [tensor], headers=AUTH)
    with urllib.request.urlopen(server.url() + "/metrics", timeout=10) as response:
        text = response.read().decode()
    assert value(text, "modelyard_requests_total", protocol="grpc", code="200") >= 1
    assert value(text, "modelyard_requests_total", protocol="grpc", code="400") >= 1

"""The REST surface in-process: OIP v2, TF-Serving v1, health, metrics, auth, bad input."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hack.testbed.metrics_text import samples, value
from modelyard_runtime.dataplane.plane import DataPlane
from modelyard_runtime.server.app import build_app
from modelyard_runtime.server.processes import ProcessGroup

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]

X = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]
INFER = "/v2/models/tiny/infer"
FORM = "application/x-www-form-urlencoded"
SHORT_BINARY = orjson.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                 "parameters": {"binary_data_size": 16}}]}
)  # fmt: skip


def infer_body(**extra: Any) -> dict[str, Any]:
    inputs = [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": X}]
    return {"inputs": inputs, **extra}


@pytest.fixture
async def client(aiohttp_client: MakeClient, tiny_plane: DataPlane) -> Client:
    return await aiohttp_client(build_app(tiny_plane))


async def error_of(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    payload = await response.json()
    assert set(payload) == {"error"}
    message: str = payload["error"]
    return message


async def test_health_and_server_metadata(client: Client) -> None:
    assert (await client.get("/v2/health/live")).status == 200
    ready = await client.get("/v2/health/ready")
    assert (ready.status, await ready.json()) == (200, {"ready": True})
    meta = await (await client.get("/v2")).json()
    assert meta["name"] == "modelyard"
    assert "binary_tensor_data" in meta["extensions"]


@pytest.mark.parametrize("path", ["/v2/models/tiny", "/v2/models/tiny/versions/1"])
async def test_model_metadata_reads_the_graph(client: Client, path: str) -> None:
    meta = await (await client.get(path)).json()
    assert meta["name"] == "tiny"
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [
        {"name": "double", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "total", "datatype": "FP32", "shape": [-1]},
    ]
    assert meta["parameters"]["execution_provider"] == "cpu"
    assert len(meta["parameters"]["sha256"]) == 64


async def test_model_ready_and_config(client: Client) -> None:
    assert (await client.get("/v2/models/tiny/ready")).status == 200
    config = await (await client.get("/v2/models/tiny/config")).json()
    assert config["max_batch_size"] == 64
    assert config["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]}]
    assert config["output"][1] == {"name": "total", "data_type": "TYPE_FP32", "dims": []}


async def test_json_infer_echoes_id_and_computes(client: Client) -> None:
    response = await client.post(INFER, json=infer_body(id="abc"))
    assert response.status == 200
    payload = await response.json()
    assert payload["id"] == "abc"
    assert payload["model_name"] == "tiny"
    double, total = payload["outputs"]
    assert double["shape"] == [2, 4]
    assert double["data"] == [2 * v for row in X for v in row]
    assert total == {"name": "total", "datatype": "FP32", "shape": [2], "data": [10.0, 26.0]}


async def test_requested_outputs_are_honoured_in_order(client: Client) -> None:
    body = infer_body(outputs=[{"name": "total"}])
    payload = await (await client.post(INFER, json=body)).json()
    assert [o["name"] for o in payload["outputs"]] == ["total"]


async def test_binary_request_and_binary_output(client: Client) -> None:
    header = orjson.dumps(
        {
            "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                        "parameters": {"binary_data_size": 32}}],
            "outputs": [{"name": "double", "parameters": {"binary_data": True}},
                        {"name": "total"}],
        }
    )  # fmt: skip
    data = np.array(X, dtype=np.float32).tobytes()
    response = await client.post(
        INFER,
        data=header + data,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status == 200
    raw = await response.read()
    length = int(response.headers["Inference-Header-Content-Length"])
    reply = orjson.loads(raw[:length])
    assert reply["outputs"][0]["parameters"]["binary_data_size"] == 32
    assert reply["outputs"][1]["data"] == [10.0, 26.0]
    double = np.frombuffer(raw[length:], dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(double, np.array(X, dtype=np.float32) * 2)


async def test_binary_data_output_parameter_makes_every_output_binary(client: Client) -> None:
    body = infer_body(parameters={"binary_data_output": True})
    response = await client.post(INFER, json=body)
    length = int(response.headers["Inference-Header-Content-Length"])
    raw = await response.read()
    sizes = [o["parameters"]["binary_data_size"] for o in orjson.loads(raw[:length])["outputs"]]
    assert sizes == [32, 8]
    assert len(raw) == length + 40


@pytest.mark.parametrize("path", ["/v1/models/tiny:predict", "/v1/models/tiny/versions/1:predict"])
async def test_tf_serving_predict(client: Client, path: str) -> None:
    payload = await (await client.post(path, json={"instances": X})).json()
    assert payload["predictions"][1] == {"double": [10.0, 12.0, 14.0, 16.0], "total": 26.0}
    column = await (await client.post(path, json={"inputs": {"x": X}})).json()
    assert column["outputs"]["total"] == [10.0, 26.0]


async def test_tf_serving_model_status(client: Client) -> None:
    status = await (await client.get("/v1/models/tiny")).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


async def test_openapi_document_lists_the_surface(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert "/v2/models/{model}/infer" in document["paths"]
    assert "/v1/models/{model}:predict" in document["paths"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "message"),
    [
        ("post", INFER, {"data": b"{oops", "headers": {"Content-Type": "application/json"}},
         400, "not valid JSON"),
        ("post", "/v2/models/other/infer", {"json": infer_body()}, 404, "unknown model 'other'"),
        ("post", "/v2/models/tiny/versions/9/infer", {"json": infer_body()}, 404,
         "unknown version '9'"),
        ("post", INFER, {"json": {"inputs": [{"name": "z", "shape": [1], "datatype": "FP32",
                                              "data": [1]}]}}, 400, "unknown input 'z'"),
        ("post", INFER, {"json": {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                              "data": [1, 2]}]}}, 400, "has 2 elements"),
        ("post", INFER, {"json": {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                                              "data": [1, 2, 3]}]}}, 400, "model expects"),
        ("post", INFER, {"json": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32",
                                              "data": [1, 2, 3, 4]}]}}, 400, "expects FP32"),
        ("post", INFER, {"json": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP16",
                                              "data": [1, 2, 3, 4]}]}}, 400, "expects FP32"),
        ("post", INFER, {"json": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "COMPLEX",
                                              "data": [1, 2, 3, 4]}]}}, 400, "expects FP32"),
        ("post", INFER, {"data": b"a=b", "headers": {"Content-Type": FORM}},
         415, f"Content-Type '{FORM}' is not supported"),
        ("post", INFER, {"data": b"{}", "headers": {"Inference-Header-Content-Length": "x"}},
         400, "must be an integer"),
        ("post", INFER, {"data": SHORT_BINARY,
                         "headers": {"Inference-Header-Content-Length": str(len(SHORT_BINARY))}},
         400, "larger than the 0 bytes"),
        ("get", INFER, {}, 405, "Method Not Allowed"),
        ("get", "/v2/nothing/here", {}, 404, "Not Found"),
        ("post", "/v1/models/tiny:predict", {"json": {"instances": "x", "inputs": 1}}, 400,
         "exactly one of"),
    ],
)  # fmt: skip
async def test_bad_requests_get_4xx_and_the_server_keeps_serving(
    client: Client, method: str, path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    response = await getattr(client, method)(path, **kwargs)
    assert message in await error_of(response, status)
    assert (await client.post(INFER, json=infer_body())).status == 200


async def test_body_over_the_limit_is_413(
    aiohttp_client: MakeClient, tiny_plane: DataPlane
) -> None:
    tiny_plane.settings = dataclasses.replace(tiny_plane.settings, max_request_bytes=2048)
    client = await aiohttp_client(build_app(tiny_plane))
    big = {"inputs": [{"name": "x", "shape": [200, 4], "datatype": "FP32", "data": [1.5] * 800}]}
    assert "limit" in await error_of(await client.post(INFER, json=big), 413)
    assert (await client.post(INFER, json=infer_body())).status == 200


async def test_bearer_token_guards_inference_and_metadata_not_health(
    aiohttp_client: MakeClient, tiny_plane: DataPlane
) -> None:
    tiny_plane.token = b"s3cret"
    client = await aiohttp_client(build_app(tiny_plane))
    missing = await client.post(INFER, json=infer_body())
    assert "missing bearer token" in await error_of(missing, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.get("/v2/models/tiny", headers={"Authorization": "Bearer nope"})
    assert "invalid bearer token" in await error_of(wrong, 401)
    assert (await client.post("/v1/models/tiny:predict", json={"instances": X})).status == 401
    good = {"Authorization": "Bearer s3cret"}
    assert (await client.post(INFER, json=infer_body(), headers=good)).status == 200
    assert (await client.get("/v2/models/tiny", headers=good)).status == 200
    for open_path in ("/v2/health/live", "/v2/health/ready", "/metrics", "/openapi.json"):
        assert (await client.get(open_path)).status == 200, open_path


async def test_not_ready_reason_is_served_and_inference_is_refused(
    client: Client, tiny_plane: DataPlane
) -> None:
    tiny_plane.readiness.not_ready_reason = "a GPU is required"
    ready = await client.get("/v2/health/ready")
    assert ready.status == 503
    assert (await ready.json())["reason"] == "a GPU is required"
    assert (await client.get("/v2/models/tiny/ready")).status == 503
    assert "a GPU is required" in await error_of(await client.post(INFER, json=infer_body()), 503)


async def test_ready_only_once_every_process_of_the_group_is(
    client: Client, tiny_plane: DataPlane, tmp_path: Path
) -> None:
    group = ProcessGroup(
        index=0, count=2, directory=str(tmp_path), http_port=1, grpc_port=2, supervisor=1
    )
    tiny_plane.readiness.siblings = group
    group.mark_ready()
    ready = await client.get("/v2/health/ready")
    assert ready.status == 503
    assert (await ready.json())["reason"] == "1 of 2 server processes are ready"
    assert "1 of 2 server processes" in await error_of(
        await client.post(INFER, json=infer_body()), 503
    )
    (tmp_path / "ready-1").touch()
    assert (await client.get("/v2/health/ready")).status == 200
    for index in (0, 1):  # seen once, remembered: no file checks per request
        (tmp_path / f"ready-{index}").unlink()
    assert (await client.post(INFER, json=infer_body())).status == 200


async def test_metrics_follow_the_contract(client: Client) -> None:
    await client.post(INFER, json=infer_body())
    await client.post(INFER, json={"inputs": []})
    await client.post("/v1/models/tiny:predict", json={"instances": X})
    text = await (await client.get("/metrics")).text()
    base = {"model": "tiny", "revision": "r1", "track": "stable", "version": "1"}
    for found, _ in samples(text, "modelyard_requests_total"):
        assert base.items() <= found.items()
    assert value(text, "modelyard_requests_total", code="200", protocol="rest") == 1
    assert value(text, "modelyard_requests_total", code="400", protocol="rest") == 1
    assert value(text, "modelyard_requests_total", code="200", protocol="v1") == 1
    assert value(text, "modelyard_rejected_requests_total", reason="bad_request") == 1
    assert value(text, "modelyard_rejected_requests_total", reason="queue_full") == 0
    buckets = samples(text, "modelyard_request_duration_seconds_bucket")
    edges = {found["le"] for found, _ in buckets}
    assert {"0.0005", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "+Inf"} <= edges
    assert value(text, "modelyard_batch_size_count") >= 2
    assert value(text, "modelyard_model_info", execution_provider="cpu", opset="17") == 1
    stages = {found["stage"] for found, _ in samples(text, "modelyard_model_load_duration_seconds")}
    assert stages == {"verify", "load", "warmup"}
    for name in (
        "modelyard_queue_duration_seconds_count",
        "modelyard_compute_duration_seconds_count",
        "modelyard_requests_in_flight",
        "modelyard_queue_depth",
    ):
        assert samples(text, name), name


async def test_models_of_every_datatype_round_trip(
    aiohttp_client: MakeClient, models: dict[str, Path]
) -> None:
    from modelyard_runtime.settings import Settings
    from tests.conftest import make_plane

    plane = await make_plane(Settings(model_path=str(models["identity"])))
    try:
        client = await aiohttp_client(build_app(plane))
        values = {
            "INT32": [1, -2, 3, 4], "BOOL": [True, False, True, True], "FP64": [0.5, 1, 2, 3],
            "BYTES": ["a", "bé", "", "z"], "UINT8": [0, 255, 1, 2], "INT64": [2**40, -1, 0, 7],
        }  # fmt: skip
        inputs: list[dict[str, Any]] = [
            {"name": f"in_{i}", "shape": [2, 2], "datatype": dt, "data": values[dt]}
            for i, dt in enumerate(["INT32", "BOOL", "FP16", "FP64", "BYTES", "UINT8", "INT64"])
            if dt != "FP16"
        ]
        fp16 = np.array([1.5, -2, 0.25, 8], dtype=np.float16).tobytes()
        inputs.insert(2, {"name": "in_2", "shape": [2, 2], "datatype": "FP16",
                          "parameters": {"binary_data_size": len(fp16)}})  # fmt: skip
        header = orjson.dumps({"inputs": inputs, "outputs": [
            {"name": f"out_{i}", "parameters": {"binary_data": i == 2}} for i in range(7)
        ]})  # fmt: skip
        response = await client.post(
            "/v2/models/identity/infer",
            data=header + fp16,
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        assert response.status == 200, await response.text()
        raw = await response.read()
        length = int(response.headers["Inference-Header-Content-Length"])
        outputs = orjson.loads(raw[:length])["outputs"]
        for item in inputs:
            out = outputs[int(item["name"].split("_")[1])]
            assert out["datatype"] == item["datatype"]
            if "data" in item:
                assert out["data"] == item["data"], item["datatype"]
        assert np.frombuffer(raw[length:], np.float16).tolist() == [1.5, -2, 0.25, 8]
    finally:
        assert plane.batcher is not None
        await plane.batcher.close()

"""``make demo``: serve a generated model with modelyard-runtime and talk to it like a user would.

Builds a small MLP (no downloads), starts ``modelyard-runtime serve`` on a free loopback port,
sends an OIP v2 request with NVIDIA's tritonclient (JSON and binary tensors), a TF-Serving v1
``:predict``, prints a few metrics, and stops the server by its process id.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient

from hack.testbed import onnx_models
from hack.testbed.processes import RuntimeProcess

WORKDIR = Path(".local/demo")


def main() -> None:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    model = onnx_models.mlp_model(WORKDIR / "demo-mlp.onnx", (16, 64, 3))
    print(f"model: {model} (MLP 16-64-3, built in code)")
    server = RuntimeProcess(
        ["--model", str(model), "--name", "demo", "--model-version", "v1",
         "--host", "127.0.0.1", "--http-port", "0", "--warmup", "1,8"]
    )  # fmt: skip
    try:
        url = server.wait_ready(120)
        print(f"serving at {url} (pid {server.popen.pid})\n")
        host = url.removeprefix("http://")
        client = httpclient.InferenceServerClient(host)
        meta = client.get_model_metadata("demo")
        print("model metadata:", json.dumps(meta, indent=None))
        x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
        for binary in (False, True):
            tensor = httpclient.InferInput("input", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            result = client.infer("demo", [tensor], request_id="demo-1")
            kind = "binary tensors" if binary else "JSON tensors"
            print(
                f"OIP v2 infer ({kind}):",
                np.round(result.as_numpy("output").astype(np.float64), 4).tolist(),
            )
        request = urllib.request.Request(
            url + "/v1/models/demo:predict",
            data=json.dumps({"instances": x.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            print(
                "TF-Serving v1 predict:", json.loads(response.read())["predictions"][0][:3], "..."
            )
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        print("\nmetrics (excerpt):")
        for line in lines:
            if line.startswith(("modelyard_requests_total{", "modelyard_model_info{")):
                print("  " + line)
        client.close()
        print("\nnext: `modelyard-runtime serve --help`; docs/runtime.md describes every endpoint.")
    finally:
        server.terminate()
        code = server.wait(60)
        print(f"server stopped (exit {code})")


if __name__ == "__main__":
    main()

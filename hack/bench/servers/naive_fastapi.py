"""Naive FastAPI + uvicorn, the deployment-tutorial style: pydantic body, sync endpoint."""

from __future__ import annotations

import sys

import numpy as np
import uvicorn
from common import session
from fastapi import FastAPI
from pydantic import BaseModel

path, port = sys.argv[1], int(sys.argv[2])
sess = session(path)
name = sess.get_inputs()[0].name
app = FastAPI()


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):
    inputs: list[Tensor]


@app.post("/v2/models/mlp/infer")
def infer(request: InferRequest) -> dict[str, object]:
    tensor = request.inputs[0]
    x = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
    y = sess.run(None, {name: x})[0]
    out = {"name": "output", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}
    return {"model_name": "mlp", "outputs": [out]}


@app.get("/v2/health/ready")
def ready() -> str:
    return "ok"


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)

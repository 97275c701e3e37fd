"""Naive aiohttp + orjson: one request, one session.run on the event loop, no batching."""

from __future__ import annotations

import sys

import numpy as np
import orjson
from aiohttp import web
from common import session

path, port = sys.argv[1], int(sys.argv[2])
sess = session(path)
name = sess.get_inputs()[0].name


async def infer(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    tensor = body["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    y = sess.run(None, {name: x})[0]
    out = {"name": "output", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}
    return web.Response(
        body=orjson.dumps({"model_name": "mlp", "outputs": [out]}), content_type="application/json"
    )


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


app = web.Application()
app.router.add_post("/v2/models/mlp/infer", infer)
app.router.add_get("/v2/health/ready", ready)
web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)

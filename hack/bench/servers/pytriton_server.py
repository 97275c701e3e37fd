"""PyTriton 0.7: Triton's dynamic batcher in front of a Python callable running the session."""

from __future__ import annotations

import sys

import numpy as np
from common import session
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

path, http_port, grpc_port, metrics_port = sys.argv[1], *map(int, sys.argv[2:5])
sess = session(path)
name = sess.get_inputs()[0].name
width = sess.get_inputs()[0].shape[1]


@batch
def infer_fn(input: np.ndarray) -> dict[str, np.ndarray]:
    return {"output": sess.run(None, {name: input})[0]}


config = TritonConfig(
    http_address="127.0.0.1",
    http_port=http_port,
    grpc_address="127.0.0.1",
    grpc_port=grpc_port,
    metrics_port=metrics_port,
    allow_gpu_metrics=False,
)
with Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=[])) as t:
    t.bind(
        model_name="mlp",
        infer_func=infer_fn,
        inputs=[Tensor(name="input", dtype=np.float32, shape=(width,))],
        outputs=[Tensor(name="output", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(
            max_batch_size=64, batcher=DynamicBatcher(max_queue_delay_microseconds=500)
        ),
    )
    t.serve()

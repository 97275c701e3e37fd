"""KServe 0.21's python model server with a custom ONNX Model (its documented extension point)."""

from __future__ import annotations

import sys
import uuid

import numpy as np
from common import session
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

path, http_port, grpc_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


class OnnxModel(Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.load()

    def load(self) -> bool:
        self.sess = session(path)
        self.input = self.sess.get_inputs()[0].name
        self.ready = True
        return True

    def predict(self, payload, headers=None, response_headers=None):  # type: ignore[no-untyped-def]
        if isinstance(payload, InferRequest):
            y = self.sess.run(None, {self.input: payload.inputs[0].as_numpy()})[0]
            out = InferOutput(name="output", shape=list(y.shape), datatype="FP32")
            out.set_data_from_numpy(y, binary_data=False)
            return InferResponse(
                response_id=payload.id or str(uuid.uuid4()),
                model_name=self.name,
                infer_outputs=[out],
            )
        x = np.asarray(payload["instances"], np.float32)
        return {"predictions": self.sess.run(None, {self.input: x})[0].tolist()}


ModelServer(http_port=http_port, grpc_port=grpc_port, workers=1).start([OnnxModel("mlp")])

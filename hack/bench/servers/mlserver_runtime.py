"""MLServer 1.7.1 custom runtime (MLServer ships no ONNX runtime)."""

from __future__ import annotations

from common import session
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, NumpyRequestCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        self.sess = session(self.settings.parameters.uri)
        self.input = self.sess.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        y = self.sess.run(None, {self.input: NumpyRequestCodec.decode_request(payload)})[0]
        return InferenceResponse(
            model_name=self.name, id=payload.id, outputs=[NumpyCodec.encode_output("output", y)]
        )

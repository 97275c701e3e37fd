"""TF-Serving REST v1: ``POST /v1/models/{m}[/versions/{v}]:predict`` and model status.

Translation only: ``_Predict`` decodes with ``protocol.tfserving`` and encodes the reply;
``DataPlane.infer`` does the rest. Errors are raised and mapped by ``rest.edge``.
"""

from __future__ import annotations

from aiohttp import web

from modelyard_runtime.dataplane.model import ServedModel
from modelyard_runtime.dataplane.plane import DataPlane, Outputs
from modelyard_runtime.protocol import tfserving
from modelyard_runtime.server import rest
from modelyard_runtime.server.decoding import BodyDecoder
from modelyard_runtime.server.rest import JSON, json_response
from modelyard_runtime.settings import Settings

_NAME = "{model:[^/:]+}"
_VERSION = "{version:[^/:]+}"


class _Predict:
    """``:predict`` as an ``Exchange``: ``instances`` or ``inputs`` in, every output out."""

    __slots__ = (
        "_decoder",
        "_request",
        "_settings",
        "authorization",
        "model_name",
        "model_version",
    )
    protocol = "v1"
    deadline = None

    def __init__(self, request: web.Request, settings: Settings, decoder: BodyDecoder) -> None:
        self._request = request
        self._settings = settings
        self._decoder = decoder
        info = request.match_info
        self.model_name = info["model"]
        self.model_version = info.get("version")
        self.authorization = request.headers.get("Authorization")

    async def decode(self, model: ServedModel) -> tfserving.PredictRequest:
        rest.check_content_type(self._request)
        body = await rest.read_body(self._request, self._settings, self._decoder)
        return await self._decoder.decode(tfserving.decode_predict, body, model.inputs)

    def encode(
        self, model: ServedModel, request: tfserving.PredictRequest, outputs: Outputs
    ) -> web.Response:
        specs = [spec for spec, _ in outputs]
        payload = tfserving.encode_predict(request, specs, [array for _, array in outputs])
        return web.Response(body=payload, content_type=JSON)


async def model_status(request: web.Request, plane: DataPlane) -> web.StreamResponse:
    status = plane.status()
    state = "AVAILABLE" if status.ready else ("UNAVAILABLE" if status.loaded else "LOADING")
    return json_response(
        {
            "name": status.name,
            "ready": status.ready,
            "model_version_status": [
                {
                    "version": status.version,
                    "state": state,
                    "status": {
                        "error_code": "OK" if status.ready else "UNAVAILABLE",
                        "error_message": status.problem,
                    },
                }
            ],
        }
    )


def add_routes(app: web.Application, plane: DataPlane, decoder: BodyDecoder) -> None:
    async def predict(request: web.Request) -> web.StreamResponse:
        return await plane.infer(_Predict(request, plane.settings, decoder))

    router = app.router
    for prefix in (f"/v1/models/{_NAME}", f"/v1/models/{_NAME}/versions/{_VERSION}"):
        router.add_post(prefix + ":predict", predict)
        router.add_get(prefix, rest.guarded(plane, model_status))

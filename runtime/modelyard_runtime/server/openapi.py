"""The OpenAPI 3.1 document of the REST surface, served at ``/openapi.json``.

Every status a route can answer is listed with its body (``{"error": ...}`` for errors), so an
API fuzzer (schemathesis, ``tests/integration/test_openapi_fuzz.py``) can check the server
against it.
"""

from __future__ import annotations

from typing import Any

from modelyard_runtime import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}
_TENSOR = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {
            "type": "string",
            "enum": [
                "BOOL",
                "UINT8",
                "UINT16",
                "UINT32",
                "UINT64",
                "INT8",
                "INT16",
                "INT32",
                "INT64",
                "FP16",
                "FP32",
                "FP64",
                "BYTES",
            ],
        },
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
        "parameters": {"type": "object"},
        "data": {"description": "Row-major tensor data, flat or nested."},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _parameters(path: str) -> list[dict[str, Any]]:
    """The path's ``{model}`` and ``{version}`` parameters."""
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("model", "version")
        if "{" + name + "}" in path
    ]


def _op(
    summary: str,
    ok: dict[str, Any],
    *errors: int,
    body: dict[str, Any] | None = None,
    secured: bool = True,
    path: str = "",
    binary: bool = False,
) -> dict[str, Any]:
    """One operation: ``ok`` is the 200 body's schema (also binary when ``binary``)."""
    responses: dict[str, Any] = {"200": {"description": "OK", **_json(ok)}}
    if binary:
        responses["200"]["content"].update(_BINARY)
    for code in errors:
        responses[str(code)] = {"description": "Error", **_json(_ERROR)}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters := _parameters(path):
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
        if binary:
            op["requestBody"]["content"].update(_BINARY)
    if not secured:
        op["security"] = []
    return op


def document() -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "object"}
    infer_request = {"$ref": "#/components/schemas/InferRequest"}
    infer_errors = (400, 401, 404, 408, 413, 415, 429, 500, 503, 504)
    model_paths: dict[str, Any] = {}
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        model_paths[prefix] = {"get": _op("Model metadata", obj, 401, 404, 503, path=prefix)}
        model_paths[prefix + "/ready"] = {
            "get": _op("Model readiness", obj, 401, 404, 503, path=prefix)
        }
        model_paths[prefix + "/config"] = {
            "get": _op("Triton model configuration", obj, 401, 404, 503, path=prefix)
        }
        model_paths[prefix + "/infer"] = {
            "post": _op(
                "Inference (JSON or binary tensors)",
                obj,
                *infer_errors,
                body=infer_request,
                path=prefix,
                binary=True,
            )
        }
    for prefix in ("/v1/models/{model}", "/v1/models/{model}/versions/{version}"):
        model_paths[prefix + ":predict"] = {
            "post": _op(
                "TF-Serving predict (instances or inputs)",
                obj,
                *infer_errors,
                body=obj,
                path=prefix,
            )
        }
        model_paths[prefix] = {"get": _op("TF-Serving model status", obj, 401, 404, path=prefix)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelyard runtime", "version": __version__},
        "security": [{"bearer": []}],
        "paths": {
            "/v2/health/live": {"get": _op("Liveness", obj, secured=False)},
            "/v2/health/ready": {"get": _op("Readiness", obj, 503, secured=False)},
            "/v2": {"get": _op("Server metadata", obj, 401)},
            "/openapi.json": {"get": _op("This document", obj, secured=False)},
            **model_paths,
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Tensor": _TENSOR,
                "InferRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": obj,
                        "inputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Tensor"},
                        },
                        "outputs": {"type": "array", "items": obj},
                    },
                },
            },
        },
    }

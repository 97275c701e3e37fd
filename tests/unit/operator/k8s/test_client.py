"""The operator's API session: lists arrive without what the operator never reads."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from modelyard_operator.k8s.client import lean_list, open_session

MakeServer = Callable[[web.Application], Awaitable[TestServer]]
MANAGED = [{"manager": "kube-controller-manager", "fieldsV1": {"f:spec": {}}}]


def item(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": "a", "labels": {"app": "x"}, "managedFields": MANAGED},
        "spec": spec,
        "status": {"phase": "Running"},
    }


POD = item("Pod", {"containers": [{"name": "runtime"}]})
DEPLOYMENT = item(
    "Deployment",
    {"replicas": 2, "template": {"metadata": {"labels": {"rev": "r1"}}, "spec": {"x": 1}}},
)
MDEP = item("ModelDeployment", {"model": {"uri": "file:///m.onnx"}})


def test_pod_list_keeps_metadata_and_status_only() -> None:
    lean = lean_list({"kind": "PodList", "items": [copy.deepcopy(POD)]})["items"][0]
    assert lean["metadata"] == {"name": "a", "labels": {"app": "x"}}
    assert lean["status"] == {"phase": "Running"}
    assert "spec" not in lean


def test_deployment_list_keeps_replicas_and_template_labels() -> None:
    lean = lean_list({"kind": "DeploymentList", "items": [copy.deepcopy(DEPLOYMENT)]})["items"][0]
    assert lean["spec"] == {"replicas": 2, "template": {"metadata": {"labels": {"rev": "r1"}}}}
    assert "managedFields" not in lean["metadata"]


def test_other_lists_lose_managed_fields_only() -> None:
    lean = lean_list({"kind": "ModelDeploymentList", "items": [copy.deepcopy(MDEP)]})["items"][0]
    expected = copy.deepcopy(MDEP)
    del expected["metadata"]["managedFields"]
    assert lean == expected


def test_single_objects_and_odd_shapes_pass_through() -> None:
    assert lean_list(copy.deepcopy(POD)) == POD
    assert lean_list([1, 2]) == [1, 2]
    odd = {"kind": "DeploymentList", "items": [None, {"spec": {"template": None}}]}
    assert lean_list(copy.deepcopy(odd)) == odd


@dataclasses.dataclass
class Insecure:
    server: str
    ca_path: Any = None
    ca_data: Any = None
    insecure: bool | None = True
    scheme: str | None = None
    token: str | None = "t0ken"
    certificate_path: Any = None
    certificate_data: Any = None
    private_key_path: Any = None
    private_key_data: Any = None


async def test_session_decodes_lists_lean_and_leaves_text_alone(
    aiohttp_server: MakeServer,
) -> None:
    async def pods(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer t0ken"
        return web.json_response({"kind": "PodList", "items": [POD]})

    app = web.Application()
    app.router.add_get("/api/v1/pods", pods)
    server = await aiohttp_server(app)
    url = str(server.make_url("/api/v1/pods"))
    session = open_session(Insecure(url), limit=2, user_agent="test")
    try:
        async with session.get(url) as response:
            decoded = await response.json()
        async with session.get(url) as response:
            text = await response.text()
    finally:
        await session.close()
    assert decoded["items"][0]["metadata"] == {"name": "a", "labels": {"app": "x"}}
    assert "managedFields" in text

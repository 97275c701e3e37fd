"""The only code that talks to the API server for the operator's own writes.

``HttpKubeClient`` implements ``k8s.api.KubeClient`` with a thin aiohttp client built from the
credentials kopf logged in with (one source of truth): server-side apply with the operator's
field manager, get, delete, merge patches (of an object or its status) and create. Every call
has a timeout; HTTP failures become ``K8sError`` subclasses that carry the status.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import aiohttp

from modelyard_operator.k8s.errors import error_for

Object = dict[str, Any]
TIMEOUT: Final = aiohttp.ClientTimeout(total=30)


class Credentials(Protocol):
    """What the client reads from kopf's ``ConnectionInfo``."""

    @property
    def server(self) -> str: ...
    @property
    def ca_path(self) -> Any: ...
    @property
    def ca_data(self) -> Any: ...
    @property
    def insecure(self) -> bool | None: ...
    @property
    def scheme(self) -> str | None: ...
    @property
    def token(self) -> str | None: ...
    @property
    def certificate_path(self) -> Any: ...
    @property
    def certificate_data(self) -> Any: ...
    @property
    def private_key_path(self) -> Any: ...
    @property
    def private_key_data(self) -> Any: ...


_CORE_GROUPS: Final = {"v1"}


def collection_path(api_version: str, plural: str, namespace: str | None) -> str:
    base = "/api/v1" if api_version in _CORE_GROUPS else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


PLURALS: Final = {
    "Deployment": "deployments",
    "Service": "services",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "ScaledObject": "scaledobjects",
    "NetworkPolicy": "networkpolicies",
    "Secret": "secrets",
    "ModelDeployment": "modeldeployments",
    "Pod": "pods",
    "Event": "events",
    "Lease": "leases",
}


def object_path(api_version: str, kind: str, namespace: str, name: str) -> str:
    return f"{collection_path(api_version, PLURALS[kind], namespace)}/{name}"


def _material(data: str | bytes, *, b64: bool = False) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64decode(raw) if b64 and not raw.lstrip().startswith(b"-----") else raw


def ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    """TLS settings from the credentials. Embedded client certificate data goes through a
    private temporary directory (``ssl`` loads key pairs from files only); nothing else touches
    the filesystem, so a pod with a read-only root and a token needs no writable /tmp."""
    if credentials.insecure:
        return False
    context = ssl.create_default_context()
    if credentials.ca_path:
        context.load_verify_locations(cafile=str(credentials.ca_path))
    elif credentials.ca_data:
        context.load_verify_locations(cadata=_material(credentials.ca_data, b64=True).decode())
    if credentials.certificate_data and credentials.private_key_data:
        with tempfile.TemporaryDirectory(prefix="modelyard-tls-") as workdir:
            cert, key = Path(workdir) / "client.crt", Path(workdir) / "client.key"
            cert.write_bytes(_material(credentials.certificate_data, b64=True))
            key.touch(mode=0o600)
            key.write_bytes(_material(credentials.private_key_data, b64=True))
            context.load_cert_chain(str(cert), str(key))
    elif credentials.certificate_path and credentials.private_key_path:
        context.load_cert_chain(credentials.certificate_path, credentials.private_key_path)
    return context


# What the operator never reads of a listed object, by list kind: kopf, the indexes and the
# handlers use metadata (not managedFields), a ModelDeployment whole, a Deployment's replicas and
# its pod template's labels, and a pod's status.
LIST_UNUSED: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "PodList": (("spec",),),
    "DeploymentList": (("spec", "template", "spec"),),
}


def lean_list(data: Any) -> Any:
    """Drop from a decoded list response what the operator never reads (``LIST_UNUSED``, and
    every item's ``metadata.managedFields``, often half of an object); anything else as is."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return data
    unused = LIST_UNUSED.get(str(data.get("kind")), ())
    for item in data["items"]:
        if not isinstance(item, dict):
            continue
        item.get("metadata", {}).pop("managedFields", None)
        for path in unused:
            node: Any = item
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1], None)
    return data


class LeanListResponse(aiohttp.ClientResponse):
    """kopf lists every watched resource on start, and each listed object stays in memory until
    all of them are indexed: at a thousand ModelDeployments that is 3,000 full objects at once,
    and the heap never shrinks back. Lists decoded here are ``lean_list``ed."""

    async def json(self, *args: Any, **kwargs: Any) -> Any:
        return lean_list(await super().json(*args, **kwargs))


def open_session(credentials: Credentials, *, limit: int, user_agent: str) -> aiohttp.ClientSession:
    """One pool of at most ``limit`` connections, for kopf's watches and writes and the
    operator's own calls alike. A burst (a thousand objects resumed at once) then queues in the
    pool instead of opening a TLS connection per request, which the apiserver answers with 429s
    and which costs ~130 KiB of buffers each."""
    headers = {"Accept": "application/json", "User-Agent": user_agent}
    if credentials.token:
        headers["Authorization"] = f"{credentials.scheme or 'Bearer'} {credentials.token}"
    connector = aiohttp.TCPConnector(ssl=ssl_context(credentials), limit=limit)
    return aiohttp.ClientSession(
        headers=headers, connector=connector, response_class=LeanListResponse
    )


class HttpKubeClient:
    """``KubeClient`` over a session it does not own (``open_session``)."""

    def __init__(self, session: aiohttp.ClientSession, server: str, *, field_manager: str) -> None:
        self._server = server.rstrip("/")
        self._field_manager = field_manager
        self._session = session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Object:
        data = json.dumps(body, sort_keys=True) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self._session.request(
                method,
                self._server + path,
                data=data,
                headers=headers,
                params=params,
                timeout=TIMEOUT,
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise error_for(response.status, method, path, text)
                return json.loads(text) if text else {}
        except (aiohttp.ClientError, TimeoutError) as e:
            raise error_for(0, method, path, str(e) or type(e).__name__) from e

    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> Object:
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        params = {"fieldManager": self._field_manager, "force": "true" if force else "false"}
        return await self._request(
            "PATCH", path, body=obj, content_type="application/apply-patch+yaml", params=params
        )

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object:
        return await self._request("GET", object_path(api_version, kind, namespace, name))

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        await self._request("DELETE", object_path(api_version, kind, namespace, name))

    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object:
        return await self._request(
            "PATCH",
            object_path(api_version, kind, namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
            params={"fieldManager": self._field_manager},
        )

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Object:
        path = object_path(api_version, kind, namespace, name) + "/status"
        return await self._request(
            "PATCH", path, body={"status": status}, content_type="application/merge-patch+json"
        )

    async def create(self, obj: Mapping[str, Any]) -> Object:
        meta = obj["metadata"]
        path = collection_path(obj["apiVersion"], PLURALS[obj["kind"]], meta["namespace"])
        return await self._request("POST", path, body=obj)

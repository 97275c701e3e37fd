"""``KubeClient``: the seam between the operator's logic and the API server.

``k8s.client.HttpKubeClient`` talks to a real apiserver; ``k8s.fake.FakeKube`` keeps objects in
memory for fast tests. Methods raise ``k8s.errors.K8sError`` subclasses (404, 409, 422...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Object = dict[str, Any]


class KubeClient(Protocol):
    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> Object:
        """Server-side apply ``obj`` with the operator's field manager; the live object."""
        ...

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object: ...

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...

    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object:
        """JSON merge patch of the object (``null`` removes a key)."""
        ...

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Object:
        """Merge-patch the status subresource (never ``spec``)."""
        ...

    async def create(self, obj: Mapping[str, Any]) -> Object: ...

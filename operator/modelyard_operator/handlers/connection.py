"""The operator's connection to the API server, shared with kopf, and a ``KubeClient`` over it.

kopf logs in (``handlers.registry``'s login handler) and hands over its credentials; from then
on kopf and the operator's own calls share one bounded connection pool (``k8s.client``). A
re-login (after a 401) opens a new pool; the old one stays open until shutdown, since kopf may
still be reading from it. ``Connection`` itself is the operator's ``KubeClient``: each call goes
to the client of the current pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from modelyard_operator import __version__
from modelyard_operator.k8s.client import Credentials, HttpKubeClient, open_session
from modelyard_operator.reconcile.naming import FIELD_MANAGER

# Connections per reconcile slot: each reconcile writes a few children, and kopf's watch
# streams, its finalizer and annotation patches and the status writes share the pool; fewer
# make a burst of creates queue inside the operator.
POOL_PER_RECONCILE: Final = 4

Object = dict[str, Any]


class Connection:
    def __init__(self, *, max_concurrent_reconciles: int) -> None:
        self._limit = max_concurrent_reconciles * POOL_PER_RECONCILE
        self.session: aiohttp.ClientSession | None = None
        self._stale: list[aiohttp.ClientSession] = []
        self._client: HttpKubeClient | None = None

    def connect(self, credentials: Credentials) -> aiohttp.ClientSession:
        """A new shared pool for these credentials (a login, or a re-login after a 401)."""
        if self.session is not None:
            self._stale.append(self.session)
        self.session = open_session(
            credentials, limit=self._limit, user_agent=f"modelyard-operator/{__version__}"
        )
        self._client = HttpKubeClient(self.session, credentials.server, field_manager=FIELD_MANAGER)
        return self.session

    def client(self) -> HttpKubeClient:
        if self._client is None:
            raise RuntimeError("no credentials yet: the login handler has not run")
        return self._client

    async def close(self) -> None:
        self._client = None
        for session in [*self._stale, self.session]:
            if session is not None:
                await session.close()
        self._stale.clear()
        self.session = None

    # -- KubeClient --------------------------------------------------------------------------
    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> Object:
        return await self.client().apply(obj, force=force)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object:
        return await self.client().get(api_version, kind, namespace, name)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        await self.client().delete(api_version, kind, namespace, name)

    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object:
        return await self.client().patch(api_version, kind, namespace, name, patch)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Object:
        return await self.client().patch_status(api_version, kind, namespace, name, status)

    async def create(self, obj: Mapping[str, Any]) -> Object:
        return await self.client().create(obj)

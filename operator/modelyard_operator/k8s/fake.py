"""``FakeKube``: an in-memory ``KubeClient`` for fast tests of the operator's handlers.

Objects are kept by (kind, namespace, name). Server-side apply replaces the object's spec and
metadata (keeping its status), merge patches follow RFC 7386, ``create`` fills a
``generateName``. Every write is recorded in ``writes`` so a test can assert what was (not)
written, and ``fail_next`` makes the next matching call raise, to test error mapping.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from modelyard_operator.k8s.errors import K8sError, K8sNotFoundError

Object = dict[str, Any]
Key = tuple[str, str, str]


@dataclasses.dataclass
class Write:
    verb: str
    kind: str
    namespace: str
    name: str
    body: Any = None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[Key, Object] = {}
        self.writes: list[Write] = []
        self._failures: list[tuple[str, str, K8sError]] = []
        self._names = itertools.count(1)

    # -- test helpers ----------------------------------------------------------------------
    def put(self, obj: Mapping[str, Any]) -> Object:
        """Store ``obj`` as if it existed in the cluster (no write recorded)."""
        stored = copy.deepcopy(dict(obj))
        meta = stored.setdefault("metadata", {})
        self.objects[(stored["kind"], meta.get("namespace", ""), meta["name"])] = stored
        return stored

    def find(self, kind: str, namespace: str, name: str) -> Object | None:
        return self.objects.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[Object]:
        return [obj for (k, _, _), obj in sorted(self.objects.items()) if k == kind]

    def fail_next(self, verb: str, kind: str, error: K8sError) -> None:
        self._failures.append((verb, kind, error))

    def _maybe_fail(self, verb: str, kind: str) -> None:
        for index, (want_verb, want_kind, error) in enumerate(self._failures):
            if want_verb == verb and want_kind == kind:
                del self._failures[index]
                raise error

    def _require(self, kind: str, namespace: str, name: str, verb: str) -> Object:
        obj = self.find(kind, namespace, name)
        if obj is None:
            raise K8sNotFoundError(404, f"{verb} {kind} {namespace}/{name}: 404: not found")
        return obj

    # -- KubeClient ------------------------------------------------------------------------
    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> Object:
        kind, meta = obj["kind"], obj["metadata"]
        self._maybe_fail("apply", kind)
        self.writes.append(Write("apply", kind, meta["namespace"], meta["name"], obj))
        live = self.find(kind, meta["namespace"], meta["name"])
        stored = copy.deepcopy(dict(obj))
        if live is not None:
            stored["status"] = live.get("status", {})
            generation = live["metadata"].get("generation", 1)
            if live.get("spec") != stored.get("spec"):
                generation += 1
            stored["metadata"]["generation"] = generation
        else:
            stored["metadata"]["generation"] = 1
        return copy.deepcopy(self.put(stored))

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object:
        self._maybe_fail("get", kind)
        return copy.deepcopy(self._require(kind, namespace, name, "GET"))

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self._maybe_fail("delete", kind)
        self._require(kind, namespace, name, "DELETE")
        self.writes.append(Write("delete", kind, namespace, name))
        del self.objects[(kind, namespace, name)]

    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object:
        self._maybe_fail("patch", kind)
        live = self._require(kind, namespace, name, "PATCH")
        self.writes.append(Write("patch", kind, namespace, name, patch))
        merged = merge_patch(live, patch)
        if merged.get("spec") != live.get("spec"):
            merged["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
        return copy.deepcopy(self.put(merged))

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Object:
        self._maybe_fail("patch_status", kind)
        live = self._require(kind, namespace, name, "PATCH")
        self.writes.append(Write("patch_status", kind, namespace, name, status))
        live["status"] = merge_patch(live.get("status") or {}, status)
        return copy.deepcopy(live)

    async def create(self, obj: Mapping[str, Any]) -> Object:
        kind, meta = obj["kind"], dict(obj["metadata"])
        self._maybe_fail("create", kind)
        if "name" not in meta:
            meta["name"] = f"{meta.get('generateName', 'object-')}{next(self._names):05d}"
        self.writes.append(Write("create", kind, meta["namespace"], meta["name"], obj))
        return copy.deepcopy(self.put({**obj, "metadata": meta}))

"""Small helpers for tests against the local cluster: poll with a deadline, read objects."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from hack.cluster.localcluster import LocalCluster


def eventually(check: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)  # polling the API server with a deadline


def get(cluster: LocalCluster, namespace: str, *what: str) -> dict[str, Any] | None:
    """The object as JSON, or None when it does not exist."""
    result = cluster.kubectl("-n", namespace, "get", *what, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for entry in ((obj or {}).get("status") or {}).get("conditions") or []:
        if entry["type"] == type_:
            return dict(entry)
    return {}

"""Helpers for tests on the real node (tier D): a model store its pods download from, a
ModelDeployment placed on it, its running pods."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hack.cluster import node
from hack.cluster.base import NODE_IP
from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from tests.support.kube import get


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """An HTTP file server for ``directory`` on the node address; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((NODE_IP, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{NODE_IP}:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def on_real_node(
    name: str, uri: str, digest: str, image: str, version: str, *, replicas: int = 1
) -> dict[str, Any]:
    extra = {
        "runtime": {"image": image, "imagePullPolicy": "Never", "warmup": {"batchSizes": [1]}},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "scheduling": {"nodeSelector": node.node_selector(), "tolerations": [node.toleration()]},
    }
    return md_manifest(
        name, uri=uri, version=version, replicas=replicas, sha256=digest, extra_spec=extra
    )


def running_pods(cluster: LocalCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    pods = get(cluster, namespace, "pods", "-l", f"app.kubernetes.io/instance={name}")
    items = pods["items"] if pods else []
    return [p for p in items if p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]  # fmt: skip

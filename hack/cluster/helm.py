"""The pinned ``helm`` (``build.sh``) against a ``LocalCluster``, and the chart values that run
the operator from the locally built images.

``Helm(cluster)`` runs helm as the cluster's admin, with its caches under the cluster's
directory (nothing written to ``~``). ``local_values`` points ``charts/modelyard`` at images
that ``images.load`` imported into the real node: pulled never, and with the apiserver's address
in the operator's env, because pods here have no cluster DNS and the ``kubernetes`` Service no
endpoints (as ``node.operator_deployment`` does for the plain manifest). Used by ``make demo``
and the chart's tests.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hack.cluster import node
from hack.cluster.base import NODE_IP, ROOT, ClusterError

CHART = ROOT / "charts" / "modelyard"
VERSIONS = ROOT / "hack" / "cluster" / "versions.env"


def kube_version() -> str:
    """The local cluster's Kubernetes version, for ``helm template``/``lint --kube-version``
    (what a real cluster would report; helm's own default depends on how it was built)."""
    for line in VERSIONS.read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].split("#")[0].strip()
    raise ClusterError(f"KUBERNETES_VERSION is not set in {VERSIONS}")


class Helm:
    def __init__(self, bin_dir: Path, kubeconfig: Path, home: Path) -> None:
        self.binary = bin_dir / "helm"
        self.kubeconfig = kubeconfig
        self.home = home

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        result = subprocess.run(
            [str(self.binary), *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise ClusterError(f"helm {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def values_file(self, values: dict[str, Any], name: str) -> Path:
        """``values`` as a file for ``-f`` (JSON is YAML)."""
        path = self.home / f"{name}.values.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
        return path


def local_values(
    apiserver_port: int, operator_image: str, runtime_image: str, *, pin_to_real_node: bool
) -> dict[str, Any]:
    """Values that run the chart's operator from local images on the real node.
    ``pin_to_real_node``: where the real node is tainted (the tests' cluster), select and
    tolerate it; where it takes plain pods (``real_node_first``), nothing is needed."""
    operator_repo, operator_tag = operator_image.rsplit(":", 1)
    runtime_repo, runtime_tag = runtime_image.rsplit(":", 1)
    values: dict[str, Any] = {
        "image": {"repository": operator_repo, "tag": operator_tag, "pullPolicy": "Never"},
        "runtimeImage": {"repository": runtime_repo, "tag": runtime_tag},
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": NODE_IP},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(apiserver_port)},
        ],
    }
    if pin_to_real_node:
        values["nodeSelector"] = node.node_selector()
        values["tolerations"] = [node.toleration()]
    return values

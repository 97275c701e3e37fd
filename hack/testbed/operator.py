"""Runs ``modelyard-operator`` as a real process against the local cluster, as its ServiceAccount.

Ports are picked free; ``wait_healthy`` polls kopf's liveness endpoint; ``metric`` reads one
sample from ``/metrics``. Stopped with SIGTERM by process id (``stop``), so a test can restart it.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from hack.cluster.base import ROOT, free_port
from hack.cluster.localcluster import LocalCluster
from hack.testbed.metrics_text import samples
from hack.testbed.processes import RuntimeProcess


def install_manifests(cluster: LocalCluster) -> None:
    """The CRD, the operator's namespace, ServiceAccount and least-privilege RBAC, as shipped;
    returns once the CRD is served."""
    manifests = ROOT / "manifests"
    cluster.kubectl("apply", "-f", str(ROOT / "crds" / "modeldeployments.yaml"))
    cluster.kubectl("apply", "-f", str(manifests / "operator" / "namespace.yaml"))
    cluster.kubectl("apply", "-f", str(manifests / "rbac"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/modeldeployments.serving.modelyard.io"
    )


class OperatorProcess:
    def __init__(self, kubeconfig: Path, *, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.env = env or {}
        self.process: RuntimeProcess | None = None
        self.metrics_port = self.health_port = 0

    def start(self, timeout: float = 60.0) -> None:
        self.metrics_port, self.health_port = free_port(), free_port()
        self.process = RuntimeProcess(
            [],
            module="modelyard_operator",
            command=(),
            env={
                "KUBECONFIG": str(self.kubeconfig),
                "MODELYARD_OPERATOR_METRICS_PORT": str(self.metrics_port),
                "MODELYARD_OPERATOR_HEALTH_PORT": str(self.health_port),
                "MODELYARD_OPERATOR_LOG_FORMAT": "text",
                "MODELYARD_OPERATOR_SECRET_RECHECK_SECONDS": "1",
                "MODELYARD_OPERATOR_DEFAULT_RUNTIME_IMAGE": "localhost/modelyard-runtime:test",
                **self.env,
            },
        )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.process.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"operator did not become healthy; log:\n{self.log}")
            time.sleep(0.1)  # polling a starting process

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def metric(self, metric: str, /, **labels: str) -> float:
        """Sum of the samples of ``metric`` whose labels include ``labels`` (0 when none)."""
        found = samples(self.metrics(), metric)
        return sum(v for have, v in found if labels.items() <= have.items())

    @property
    def log(self) -> str:
        return self.process.log if self.process else ""

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to finish anything (a crash, an OOM kill)."""
        if self.process is not None:
            self.process.kill()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            finally:
                self.process.kill()
            self.process = None

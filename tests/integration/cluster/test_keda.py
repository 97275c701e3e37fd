"""``engine: keda`` end to end with the real KEDA (``make test-keda``; KEDA's build takes about
15 minutes cold, so plain ``make test`` skips this and checks the ScaledObject against KEDA's
CRD only, in test_autoscaling.py).

The operator writes the ScaledObject; KEDA's operator turns it into an HPA on an external metric;
KEDA's metrics adapter answers it by running the trigger's PromQL on the real Prometheus; the
real HPA controller scales. The runtime is played by a server on a kwok pod's address that
exports ``modelyard_requests_in_flight`` = 3, so the query's total wants 3 pods at a target of 1.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess
from tests.support.kube import eventually, get

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("MODELYARD_KEDA") != "1",
                       reason="builds and runs KEDA: make test-keda"),
]  # fmt: skip


@pytest.fixture(scope="module")
def keda(installed: LocalCluster) -> LocalCluster:
    installed.start_keda()
    return installed


class Exporter(http.server.BaseHTTPRequestHandler):
    model = ""

    def do_GET(self) -> None:
        labels = f'model="{self.model}",version="v1",revision="r",track="stable"'
        body = f"modelyard_requests_in_flight{{{labels}}} 3\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def exporter() -> Iterator[list[http.server.ThreadingHTTPServer]]:
    servers: list[http.server.ThreadingHTTPServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def test_keda_scales_a_model_deployment_out_on_its_prometheus_trigger(
    keda: LocalCluster, namespace: str, operator: OperatorProcess,
    exporter: list[http.server.ThreadingHTTPServer],
) -> None:  # fmt: skip
    cluster = keda
    scaling = {"engine": "keda", "minReplicas": 1, "maxReplicas": 3, "metric": "inFlight",
               "target": 1}  # fmt: skip
    manifest = md_manifest("kedam", extra_spec={"autoscaling": scaling})
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))

    def pod_ip() -> str:
        pods = get(cluster, namespace, "pods", "-l", "serving.modelyard.io/deployment=kedam")
        ips = [p["status"].get("podIP", "") for p in (pods or {}).get("items", [])]
        return next((ip for ip in ips if ip), "")

    eventually(lambda: pod_ip() != "", timeout=60, what="a pod address")
    handler = type("KedamExporter", (Exporter,), {"model": "kedam"})
    server = http.server.ThreadingHTTPServer((pod_ip(), 8080), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    exporter.append(server)

    eventually(lambda: get(cluster, namespace, "hpa", "keda-hpa-kedam") is not None,
               timeout=120, what="KEDA's HPA")  # fmt: skip

    def replicas() -> int:
        deployment = get(cluster, namespace, "deployment", "kedam") or {}
        return int((deployment.get("spec") or {}).get("replicas") or 0)

    try:
        eventually(lambda: replicas() == 3, timeout=180, what="3 replicas")
    except AssertionError as e:
        hpa = get(cluster, namespace, "hpa", "keda-hpa-kedam") or {}
        so = get(cluster, namespace, "scaledobject", "kedam") or {}
        raise AssertionError(f"{e}: {json.dumps([hpa.get('status'), so.get('status')])}") from None
    found = get(cluster, namespace, "mdep", "kedam") or {}
    eventually(lambda: ((get(cluster, namespace, "mdep", "kedam") or {}).get("status") or {})
               .get("autoscaling", {}).get("desiredReplicas") == 3, timeout=60,
               what="status.autoscaling from KEDA's HPA")  # fmt: skip
    assert found["spec"]["autoscaling"]["engine"] == "keda"

"""Prometheus discovers runtime pods through the API by label and scrapes the runtime's metrics.

The "pod" is a kwok pod whose IP (on loopback) is served by a real modelyard-runtime process,
so the whole chain runs: label -> discovery -> scrape -> query.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.processes import RuntimeProcess

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("monitored"), tier="C", prometheus=True)
    local.up()
    try:
        yield local
    finally:
        local.down()


def query(cluster: LocalCluster, path: str, **params: str) -> Any:
    url = f"{cluster.prometheus_url}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]


def poll(check: Any, *, timeout: float = 60, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)  # polling Prometheus with a deadline
    return result


def test_runtime_pods_are_discovered_by_label_and_scraped(
    monitored: LocalCluster, models: dict[str, Path]
) -> None:
    namespace = "monitoring-test"
    monitored.create_namespace(namespace)
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "runtime-0",
                     "labels": {"app.kubernetes.io/name": "modelyard-runtime"}},
        "spec": {"containers": [{"name": "runtime", "image": "modelyard-runtime:test"}]},
    }  # fmt: skip
    other = {**pod, "metadata": {"name": "unrelated", "labels": {"app": "other"}}}
    for manifest in (pod, other):
        monitored.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))

    def pod_ip() -> str:
        return monitored.kubectl(
            "-n", namespace, "get", "pod", "runtime-0", "-o", "jsonpath={.status.podIP}"
        ).stdout.strip()  # fmt: skip

    ip = poll(pod_ip, what="a pod IP from kwok")
    assert ip.startswith("127.1.0.")
    server = RuntimeProcess(
        ["--model", str(models["tiny"]), "--host", ip, "--http-port", "8080", "--grpc-port", "0"],
        env={"MODELYARD_HOST": ip, "MODELYARD_HTTP_PORT": "8080"},
    )
    try:
        server.wait_ready()

        def healthy_target() -> list[dict[str, Any]]:
            targets = query(monitored, "/api/v1/targets")["activeTargets"]
            return [t for t in targets if t["health"] == "up"]

        (target,) = poll(healthy_target, what="the runtime pod scraped")
        active = query(monitored, "/api/v1/targets")["activeTargets"]
        assert [t["labels"]["pod"] for t in active] == ["runtime-0"], "the unlabelled pod is kept"
        assert target["labels"]["pod"] == "runtime-0"
        assert target["labels"]["namespace"] == namespace
        assert target["scrapeUrl"] == f"http://{ip}:8080/metrics"
        result = poll(
            lambda: query(monitored, "/api/v1/query", query="modelyard_model_info")["result"],
            what="modelyard_model_info in Prometheus",
        )
        assert result[0]["metric"]["model"] == "tiny"
        assert result[0]["metric"]["pod"] == "runtime-0"
    finally:
        server.terminate()
        server.wait()


def test_a_pod_with_its_own_metrics_port_is_scraped_there(
    monitored: LocalCluster, models: dict[str, Path]
) -> None:
    """A ModelDeployment with a NetworkPolicy moves /metrics to port 8082 and says so in the
    pod's ``prometheus.io/port`` annotation, which the scrape config follows."""
    namespace = "metrics-port-test"
    monitored.create_namespace(namespace)
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "runtime-guarded",
                     "labels": {"app.kubernetes.io/name": "modelyard-runtime"},
                     "annotations": {"prometheus.io/port": "8082"}},
        "spec": {"containers": [{"name": "runtime", "image": "modelyard-runtime:test"}]},
    }  # fmt: skip
    monitored.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(pod))

    def pod_ip() -> str:
        return monitored.kubectl(
            "-n", namespace, "get", "pod", "runtime-guarded", "-o", "jsonpath={.status.podIP}"
        ).stdout.strip()  # fmt: skip

    ip = poll(pod_ip, what="a pod IP from kwok")
    server = RuntimeProcess(
        ["--model", str(models["tiny"]), "--host", ip, "--http-port", "0", "--grpc-port", "0",
         "--metrics-port", "8082"],
        env={"MODELYARD_HOST": ip},
    )  # fmt: skip
    try:
        server.wait_ready()

        def scraped() -> list[dict[str, Any]]:
            targets = query(monitored, "/api/v1/targets")["activeTargets"]
            mine = [t for t in targets if t["labels"].get("pod") == "runtime-guarded"]
            return [t for t in mine if t["health"] == "up"]

        (target,) = poll(scraped, what="the pod scraped on its metrics port")
        assert target["scrapeUrl"] == f"http://{ip}:8082/metrics"
    finally:
        server.terminate()
        server.wait()
        monitored.kubectl("-n", namespace, "delete", "pod", "runtime-guarded", "--wait=false")

"""Fixtures for tests against the real local control plane (``hack.cluster.localcluster``).

One cluster per test session (tier C: etcd, kube-apiserver, controller-manager, scheduler, kwok,
and Prometheus, which the operator's canary analysis queries);
a fresh namespace per test; component logs are printed when a test fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from hack.cluster import images
from hack.cluster import node as node_module
from hack.cluster.localcluster import LocalCluster
from hack.cluster.node import RealNode
from hack.testbed.operator import OperatorProcess, install_manifests
from tests.support.realnode import serving


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), tier="C", prometheus=True)
    local.up()
    try:
        yield local
    finally:
        local.down()


@pytest.fixture
def namespace(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.create_namespace(name)
    yield name
    if request.node.stash.get(FAILED, False):
        for log in sorted(cluster.logs.glob("*.log")):
            print(f"===== {log.name} (last 3000 chars) =====")
            print(log.read_text(errors="replace")[-3000:])
        if "operator" in request.fixturenames:
            print("===== modelyard-operator (last 6000 chars) =====")
            print(request.getfixturevalue("operator").log[-6000:])
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


OPERATOR_NAMESPACE = "modelyard-system"


@pytest.fixture(scope="session")
def installed(cluster: LocalCluster) -> LocalCluster:
    """The CRD, the operator's namespace, ServiceAccount and least-privilege RBAC, as shipped."""
    install_manifests(cluster)
    return cluster


@pytest.fixture(scope="session")
def operator(
    installed: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, running as its ServiceAccount (never cluster admin)."""
    config = installed.service_account_kubeconfig(
        OPERATOR_NAMESPACE, "modelyard-operator", tmp_path_factory.mktemp("operator") / "kubeconfig"
    )
    process = OperatorProcess(
        config, env={"MODELYARD_OPERATOR_PROMETHEUS_URL": installed.prometheus_url}
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def restricted_namespace(namespace: str, cluster: LocalCluster) -> str:
    """A test namespace that enforces PodSecurity ``restricted``, as production ones should."""
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    return namespace


@pytest.fixture(scope="session")
def real_node(cluster: LocalCluster) -> RealNode:
    """Tier D: a real kubelet + containerd joined to the session's cluster. Skipped where the
    machine cannot run one (no root, no containerd/runc/CNI/podman), unless
    ``MODELYARD_REQUIRE_NODE=1`` (CI sets it), where that is a failure."""
    missing = node_module.missing_prerequisites() + images.missing_prerequisites()
    if missing:
        message = f"the real node needs {', '.join(missing)} (hack/cluster/node-deps.sh)"
        if os.environ.get("MODELYARD_REQUIRE_NODE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return cluster.start_node()


@pytest.fixture
def model_store(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(directory, base URL) of an HTTP file server on the real node's address."""
    with serving(tmp_path) as url:
        yield tmp_path, url


@pytest.fixture(scope="session")
def runtime_image(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``Dockerfile.runtime`` built on the local base image and imported into the real node."""
    return images.load("runtime", real_node, tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def operator_image(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``Dockerfile.operator`` built on the local base image and imported into the real node."""
    return images.load("operator", real_node, tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def custom_metrics(cluster: LocalCluster) -> LocalCluster:
    """prometheus-adapter with the shipped rules, serving custom.metrics.k8s.io from the
    session's Prometheus to the real HPA controller."""
    cluster.start_metrics_adapter()
    return cluster

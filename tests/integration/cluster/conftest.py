"""Fixtures for tests against the real local control plane (``hack.cluster.localcluster``).

One cluster per test session (tier C: etcd, kube-apiserver, controller-manager, scheduler, kwok);
a fresh namespace per test; component logs are printed when a test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator

import pytest
from hack.cluster.localcluster import LocalCluster


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
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), tier="C")
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
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)

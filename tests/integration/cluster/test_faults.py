"""Operator and cluster faults on a real control plane, with real operator processes.

A cluster of its own (tier C, kwok nodes), since the faults hit the whole control plane: the
apiserver restarted and etcd stopped while a burst of ModelDeployments is being reconciled, a
node lost and its pods rescheduled, and the operator ``kill -9``'d during a burst of spec
changes. After each, every object must converge to its latest spec: status done, exactly one
Deployment per ModelDeployment (none left behind, none missing), every revision that ran in
``status.history`` (``hack.testbed.fleet.problems``), and the operator process still alive
where it was not the one killed.

Covered elsewhere: Prometheus down during a canary (``test_canary.py``), leader election
(``test_leader_election.py``), a crash-looping pod reported by stage
(``test_operator_failures.py`` on kwok, ``test_real_node.py`` on the real node). The same faults
at 1,000 objects, with timings: ``make bench-faults`` (RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.fleet import Fleet
from hack.testbed.operator import OperatorProcess, install_manifests
from tests.support.kube import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

OPERATOR_NAMESPACE = "modelyard-system"
# Objects in the kill -9 test: enough to be mid-burst when the kill lands, few enough for
# ``make test`` on 2 cores; ``make bench-faults`` runs 1,000.
SCALE = int(os.environ.get("MODELYARD_FAULTS_SCALE", "40"))
ETCD_OUTAGE = float(os.environ.get("MODELYARD_FAULTS_ETCD_OUTAGE", "15"))  # seconds
CONVERGE = 240.0  # seconds: a generous bound, only to fail a stuck test; timings are the bench's


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster these tests may break, with the CRD and the operator's RBAC installed."""
    root = tmp_path_factory.mktemp("faults")
    cluster = LocalCluster(
        root / "cluster", tier="C", pod_cidr=f"127.{100 + os.getpid() % 50}.0.0/16"
    )
    cluster.up()
    try:
        install_manifests(cluster)
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def space(faulty: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    faulty.create_namespace(name)
    yield name
    faulty.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def fleet(faulty: LocalCluster, space: str) -> Iterator[Fleet]:
    made = Fleet(faulty, space)
    made.verbose = True  # progress in the captured output of a failed test
    yield made
    made.close()


@pytest.fixture
def operator(faulty: LocalCluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator as its ServiceAccount; its log is printed when the test fails."""
    config = faulty.service_account_kubeconfig(
        OPERATOR_NAMESPACE, "modelyard-operator", tmp_path / "kubeconfig"
    )
    process = OperatorProcess(config, env={"MALLOC_ARENA_MAX": "2"})
    process.start()
    yield process
    running = process.process
    process.stop()
    log = running.log if running is not None else ""
    (tmp_path / "operator.log").write_text(log)
    print(f"===== modelyard-operator (whole log in {tmp_path / 'operator.log'}) =====")
    print(log[-6000:])


def alive(operator: OperatorProcess) -> bool:
    return operator.process is not None and operator.process.popen.poll() is None


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(count)]


def deployments_seen(fleet: Fleet) -> int:
    return len(fleet.snapshot()[1])


def test_apiserver_restarted_mid_reconcile_everything_converges(
    faulty: LocalCluster, fleet: Fleet, operator: OperatorProcess
) -> None:
    burst = names("api", 40)
    creating = threading.Thread(target=fleet.create, args=(burst,))
    creating.start()
    eventually(lambda: deployments_seen(fleet) > 0, timeout=60, what="the first Deployment")
    faulty.restart_apiserver()  # the fleet's own requests are sent again once it is back
    creating.join(180)
    assert not creating.is_alive()
    fleet.wait_converged(CONVERGE)
    assert alive(operator), operator.log[-3000:]
    assert fleet.resent > 0, "the restart should have met some of the burst's requests"


def test_etcd_stopped_and_started_the_operator_survives_and_converges(
    faulty: LocalCluster, fleet: Fleet, operator: OperatorProcess
) -> None:
    burst = names("etcd", 24)
    fleet.create(burst)
    faulty.stop_etcd()  # while the operator works through the burst
    try:
        outage_ends = time.monotonic() + ETCD_OUTAGE
        while time.monotonic() < outage_ends:  # the operator's writes fail meanwhile
            assert alive(operator), operator.log[-3000:]
            time.sleep(0.5)  # the outage lasts ETCD_OUTAGE seconds; watching the operator
    finally:
        faulty.start_etcd()
    fleet.change(burst[::2], "v2")
    fleet.wait_converged(CONVERGE)
    assert alive(operator), operator.log[-3000:]
    assert "unrecoverable" not in operator.log


def test_a_lost_node_s_pods_are_rescheduled_and_the_deployment_is_ready_again(
    faulty: LocalCluster, fleet: Fleet, operator: OperatorProcess
) -> None:
    space = fleet.namespace
    pool = {"modelyard.io/test-pool": space}
    faulty.add_fake_node(f"{space}-a", labels=pool)
    fleet.create(["lost"], replicas=2, extra_spec={"scheduling": {"nodeSelector": pool}})
    fleet.wait_converged(CONVERGE)
    assert set(_nodes_of(faulty, space)) == {f"{space}-a"}

    faulty.add_fake_node(f"{space}-b", labels=pool)
    faulty.remove_node(f"{space}-a")
    eventually(
        lambda: _nodes_of(faulty, space) == [f"{space}-b", f"{space}-b"],
        timeout=150, what="both pods rescheduled onto the surviving node",
    )  # fmt: skip
    fleet.wait_converged(CONVERGE)
    assert alive(operator)


def _nodes_of(cluster: LocalCluster, namespace: str) -> list[str]:
    """Nodes of the namespace's pods that are not being deleted, sorted."""
    pods = json.loads(cluster.kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)
    return sorted(
        p["spec"].get("nodeName", "")
        for p in pods["items"]
        if not p["metadata"].get("deletionTimestamp")
    )


def test_operator_killed_during_a_burst_of_spec_changes_every_object_converges(
    faulty: LocalCluster, fleet: Fleet, operator: OperatorProcess
) -> None:
    everything = names("kill", SCALE)
    fleet.create(everything)
    fleet.wait_converged(CONVERGE * 2)

    before = operator.metric("modelyard_operator_reconcile_total")
    changing = threading.Thread(target=fleet.change, args=(everything, "v2"))
    changing.start()
    eventually(
        lambda: operator.metric("modelyard_operator_reconcile_total") - before >= SCALE // 10,
        timeout=120, what="the operator part-way through the burst",
    )  # fmt: skip
    operator.kill()  # SIGKILL mid-burst: no chance to finish a write or a rollout step
    changing.join(180)
    fleet.change(everything[::3], "v3")  # more changes while no operator runs
    operator.start()
    fleet.change(everything[1::3], "v4")  # and while the new one resumes
    fleet.wait_converged(CONVERGE * 2)
    assert alive(operator)

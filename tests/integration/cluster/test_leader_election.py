"""Two operator processes with leader election, as two replicas of the operator Deployment, on
the real apiserver and as the operator's ServiceAccount (whose Role allows the one Lease): one
acts, the other waits; a stopped leader hands over at once, a killed one within the lease
duration and a few retry periods, and never do both act."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess
from tests.integration.cluster.conftest import OPERATOR_NAMESPACE
from tests.support.kube import condition, eventually, get

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

LEASE, RENEW, RETRY = 6.0, 4.0, 0.5  # seconds
# A killed leader's Lease is taken over once a standby has seen it unchanged for LEASE seconds;
# the standby checks every RETRY seconds, and this shared 2-core machine adds its own delays.
TAKEOVER_BOUND = LEASE + 2 * RETRY + 6.0
LEADS = r"leader election: (\S+) now holds Lease"


@pytest.fixture
def lease_name() -> str:
    return f"operator-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def replicas(
    installed: LocalCluster,
    operator: OperatorProcess,
    lease_name: str,
    tmp_path: Path,
) -> Iterator[dict[str, OperatorProcess]]:
    """Replicas ``a`` and ``b`` with leader election; the session's operator (standalone) is
    stopped meanwhile, so nothing else acts."""
    config = installed.service_account_kubeconfig(
        OPERATOR_NAMESPACE, "modelyard-operator", tmp_path / "kubeconfig"
    )
    env = {
        "MODELYARD_OPERATOR_LEADER_ELECTION": "true",
        "MODELYARD_OPERATOR_LEADER_ELECTION_NAMESPACE": OPERATOR_NAMESPACE,
        "MODELYARD_OPERATOR_LEADER_ELECTION_LEASE_NAME": lease_name,
        "MODELYARD_OPERATOR_LEADER_ELECTION_LEASE_DURATION_SECONDS": str(LEASE),
        "MODELYARD_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": str(RENEW),
        "MODELYARD_OPERATOR_LEADER_ELECTION_RETRY_PERIOD_SECONDS": str(RETRY),
    }
    made = {name: OperatorProcess(config, env={**env, "POD_NAME": name}) for name in "ab"}
    operator.stop()
    try:
        yield made
    finally:
        for process in made.values():
            process.stop()
        operator.start()


def holder(cluster: LocalCluster, lease: str) -> str:
    found = get(cluster, OPERATOR_NAMESPACE, "lease", lease)
    return str((found or {}).get("spec", {}).get("holderIdentity") or "")


def ready(cluster: LocalCluster, namespace: str, name: str) -> bool:
    return condition(get(cluster, namespace, "mdep", name), "Ready").get("status") == "True"


def apply_and_wait(cluster: LocalCluster, namespace: str, name: str) -> None:
    manifest = json.dumps(md_manifest(name))
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=manifest)
    eventually(lambda: ready(cluster, namespace, name), timeout=90, what=f"{name} Ready")


def acted(process: OperatorProcess) -> bool:
    return "reconciled " in process.log


def test_one_replica_acts_and_a_standby_takes_over_when_it_stops_or_dies(
    installed: LocalCluster,
    namespace: str,
    replicas: dict[str, OperatorProcess],
    lease_name: str,
) -> None:
    cluster = installed
    a, b = replicas["a"], replicas["b"]
    a.start()
    assert a.process is not None
    a.process.wait_for(LEADS, timeout=60)
    b.start()  # healthy on standby: its /healthz answers while it waits
    assert holder(cluster, lease_name).startswith("a_")

    apply_and_wait(cluster, namespace, "first")
    assert acted(a)
    assert not acted(b)
    assert b.process is not None
    assert "now holds Lease" not in b.process.log

    # A clean stop releases the Lease as the process exits: the standby takes over at its next
    # check, sooner than the lease could have expired (LEASE - RETRY after the last renewal).
    a.stop()
    stopped = time.monotonic()
    b.process.wait_for(LEADS, timeout=LEASE)
    handover = time.monotonic() - stopped
    assert handover < LEASE - RETRY
    assert holder(cluster, lease_name).startswith("b_")
    apply_and_wait(cluster, namespace, "second")
    assert acted(b)

    # A killed leader cannot release it: the new standby waits until it has seen the Lease
    # unchanged for the lease duration, then takes it.
    a.start()
    assert a.process is not None
    assert holder(cluster, lease_name).startswith("b_")
    killed = time.monotonic()
    b.kill()
    a.process.wait_for(LEADS, timeout=TAKEOVER_BOUND)
    takeover = time.monotonic() - killed
    print(f"handover after a stop {handover:.1f} s, takeover after a kill {takeover:.1f} s "
          f"(lease {LEASE:g} s, retry {RETRY:g} s)")  # fmt: skip
    assert LEASE - RETRY <= takeover <= TAKEOVER_BOUND
    assert holder(cluster, lease_name).startswith("a_")
    apply_and_wait(cluster, namespace, "third")
    assert "reconciled " + f"{namespace}/third" in a.log

"""Leader election on a Lease: one holder at a time, a standby takes over only after the lease
duration on its own clock (or at once after a release), the leader stops on a lost renewal."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from modelyard_operator.config import OperatorConfig
from modelyard_operator.errors import ConfigError
from modelyard_operator.handlers.leader import (
    LeaderElection,
    Observation,
    Record,
    lease_namespace,
    may_take,
    observe,
)
from modelyard_operator.k8s.errors import K8sConflictError, K8sError, K8sNotFoundError

Object = dict[str, Any]


class FakeLeases:
    """One Lease kept the way the apiserver keeps it: a resourceVersion per write, 409 when a
    write names a stale one, 404 before it exists."""

    def __init__(self) -> None:
        self.lease: Object | None = None
        self.version = 0
        self.failing = False
        self.stale_read: Object | None = None  # what a get returns instead, once

    def _check(self) -> None:
        if self.failing:
            raise K8sError(0, "GET lease: no answer")

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object:
        self._check()
        if self.stale_read is not None:
            read, self.stale_read = self.stale_read, None
            return read
        if self.lease is None:
            raise K8sNotFoundError(404, "not found")
        return copy.deepcopy(self.lease)

    async def create(self, obj: Mapping[str, Any]) -> Object:
        self._check()
        if self.lease is not None:
            raise K8sConflictError(409, "already exists")
        self.version += 1
        self.lease = {**copy.deepcopy(dict(obj))}
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object:
        self._check()
        assert self.lease is not None
        if patch["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise K8sConflictError(409, "the object has been modified")
        self.version += 1
        spec = self.lease.setdefault("spec", {})
        for key, value in patch["spec"].items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    def holder(self) -> str | None:
        holder = (self.lease or {}).get("spec", {}).get("holderIdentity")
        return str(holder) if holder is not None else None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def election(store: FakeLeases, identity: str, clock: Clock) -> LeaderElection:
    return LeaderElection(
        store, namespace="ops", name="modelyard-operator", identity=identity,
        lease_duration=15.0, renew_deadline=10.0, retry_period=2.0, clock=clock,
    )  # fmt: skip


def record(holder: str, version: str, duration: float = 15) -> Record:
    return Record(holder=holder, duration=duration, transitions=0, resource_version=version)


def test_an_unchanged_record_keeps_its_first_sighting_and_a_renewal_restarts_it() -> None:
    first = observe(None, record("a", "1"), now=10)
    assert observe(first, record("a", "1"), now=20).since == 10
    assert observe(first, record("a", "2"), now=20).since == 20


@pytest.mark.parametrize(
    ("seen", "now", "allowed"),
    [
        (record("a", "1"), 24.9, False),  # held, seen unchanged for less than 15 s
        (record("a", "1"), 25.0, True),  # unchanged for the whole lease duration
        (record("", "1"), 10.0, True),  # released
        (record("me", "1"), 10.0, True),  # ours: a renewal
        (None, 10.0, True),  # no Lease yet
    ],
)
def test_a_lease_may_be_taken_when_free_ours_or_expired_on_our_clock(
    seen: Record | None, now: float, allowed: bool
) -> None:
    assert may_take(Observation(seen, since=10), "me", now) is allowed


async def test_one_holder_and_a_standby_takes_over_only_after_the_lease_duration() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = election(store, "a", clock), election(store, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert store.holder() == "a"
    clock.now += 5
    assert await a.try_acquire_or_renew()  # a renews, then is killed
    clock.now += 1
    assert not await b.try_acquire_or_renew()  # b's first sighting of a's last renewal
    # b counts 15 s on its own clock from that sighting, never from a's timestamps.
    clock.now += 14.9
    assert not await b.try_acquire_or_renew()
    clock.now += 0.1
    assert await b.try_acquire_or_renew()
    assert store.holder() == "b"
    assert store.lease is not None
    assert store.lease["spec"]["leaseTransitions"] == 1
    # a comes back: it sees b holds it, and must not act again.
    assert not await a.try_acquire_or_renew()
    assert a.lost
    assert not a.leading


async def test_of_two_standbys_racing_for_a_free_lease_one_wins() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = election(store, "a", clock), election(store, "b", clock)
    assert await a.try_acquire_or_renew()
    await a.release()
    assert store.holder() is None
    # Both read the released Lease; a writes first, b's write carries the old resourceVersion.
    released = copy.deepcopy(store.lease)
    assert await a.try_acquire_or_renew()
    store.stale_read = released  # b read it before a's write
    with pytest.raises(K8sConflictError):
        await b.try_acquire_or_renew()
    assert store.holder() == "a"
    assert not b.leading


async def test_a_released_lease_is_taken_at_the_next_check() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = election(store, "a", clock), election(store, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert await b.try_acquire_or_renew()
    assert store.holder() == "b"


async def test_a_leader_that_cannot_renew_stops_within_the_renew_deadline_then_exits() -> None:
    store = FakeLeases()
    exits: list[int] = []
    events: list[str] = []
    leader = LeaderElection(
        store, namespace="ops", name="l", identity="a", lease_duration=0.2,
        renew_deadline=0.1, retry_period=0.01, exit_process=lambda code: exits.append(code),
    )  # fmt: skip
    await leader.acquire()
    store.failing = True
    await leader.hold(lambda: events.append("stop kopf"))
    assert events == ["stop kopf"]
    assert exits == [1]
    assert leader.lost


async def test_a_leader_that_finds_another_holder_stops_at_once() -> None:
    store, clock = FakeLeases(), Clock()
    events: list[str] = []
    a = LeaderElection(
        store, namespace="ops", name="l", identity="a", lease_duration=50.2,
        renew_deadline=50, retry_period=0.01, clock=clock, exit_process=lambda code: None,
    )  # fmt: skip
    await a.acquire()
    assert store.lease is not None
    store.lease["spec"]["holderIdentity"] = "intruder"
    await a.hold(lambda: events.append("stop kopf"))
    assert events == ["stop kopf"]
    assert store.holder() == "intruder"


def test_the_lease_namespace_is_configured_then_the_pods_then_the_service_accounts(
    tmp_path: Path,
) -> None:
    sa = tmp_path / "namespace"
    configured = OperatorConfig(leader_election_namespace="ops")
    plain = OperatorConfig()
    assert lease_namespace(configured, {"POD_NAMESPACE": "pod"}, sa) == "ops"
    assert lease_namespace(plain, {"POD_NAMESPACE": "pod"}, sa) == "pod"
    sa.write_text("from-token\n")
    assert lease_namespace(plain, {}, sa) == "from-token"
    with pytest.raises(ConfigError, match="POD_NAMESPACE"):
        lease_namespace(plain, {}, tmp_path / "absent")

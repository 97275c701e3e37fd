"""Where plain pods go in the local cluster: the kwok node is untainted unless the cluster puts
the real node first, and then only pods with ``fake_toleration()`` tolerate it."""

from __future__ import annotations

from typing import Any

from hack.cluster.localcluster import fake_node, fake_toleration


def tolerates(toleration: dict[str, str], taint: dict[str, str]) -> bool:
    """The scheduler's rule for an ``Exists`` toleration."""
    return (
        toleration["operator"] == "Exists"
        and toleration["key"] == taint["key"]
        and toleration.get("effect") in (None, "", taint["effect"])
    )


def taints(node: dict[str, Any]) -> list[dict[str, str]]:
    return list(node["spec"]["taints"])


def test_the_fake_node_takes_plain_pods_by_default() -> None:
    assert taints(fake_node("kwok-node-0")) == []


def test_with_the_real_node_first_only_pods_that_tolerate_it_go_to_the_fake_node() -> None:
    (taint,) = taints(fake_node("kwok-node-0", tainted=True))
    assert taint["effect"] == "NoSchedule"
    assert tolerates(fake_toleration(), taint)
    assert not tolerates({"key": "modelyard.io/real-node", "operator": "Exists"}, taint)

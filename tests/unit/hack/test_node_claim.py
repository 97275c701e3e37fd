"""One real node per machine: the claim waits for a running node, frees a stopped one, reaps the
node of an owner killed hard, and waits for a detached one (make demo) until it is stopped.
Other owners are written into the claim file as another process would leave it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.cluster import node
from hack.cluster.base import ClusterError, Components


class FakeCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.components = Components(root, root)

    def pids(self, **components: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.components.pids.write_text("".join(f"{p} {n}\n" for n, p in components.items()))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELYARD_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)  # fmt: skip
    yield process
    process.kill()
    process.wait()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def other_owner(cache: Path, name: str, pid: int, mode: str, **components: int) -> FakeCluster:
    cluster = FakeCluster(cache / name)
    cluster.pids(**components)
    node.RealNode.claim_file().parent.mkdir(parents=True, exist_ok=True)
    node.RealNode.claim_file().write_text(f"{pid} {mode} {cluster.root}\n")
    return cluster


def claim(cache: Path, name: str) -> node.RealNode:
    real = node.RealNode(FakeCluster(cache / name))  # type: ignore[arg-type]
    real.acquire(0)
    return real


def test_a_stopped_node_frees_the_claim_and_release_clears_it(cache: Path) -> None:
    other_owner(cache, "a", os.getpid(), "process", containerd=dead_pid(), kubelet=dead_pid())
    mine = claim(cache, "b")
    assert str(cache / "b") in node.RealNode.claim_file().read_text()
    mine.release()
    assert node.RealNode.claim_file().read_text() == ""


def test_a_running_node_of_a_live_owner_makes_others_wait(
    cache: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    other_owner(cache, "a", os.getpid(), "process", containerd=sleeper.pid)
    with pytest.raises(ClusterError, match="wait for its tests to end"):
        claim(cache, "b")


def test_the_node_of_an_owner_killed_hard_is_reaped(
    cache: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    other_owner(cache, "orphan", dead_pid(), "process", containerd=sleeper.pid)
    mine = claim(cache, "b")
    assert sleeper.wait(10) != 0  # killed with its session
    mine.release()


def test_a_detached_node_waits_for_its_down(cache: Path, sleeper: subprocess.Popen[bytes]) -> None:
    other_owner(cache, "demo", dead_pid(), "detached", kubelet=sleeper.pid)
    with pytest.raises(ClusterError, match="make demo-down"):
        claim(cache, "tests")
    assert sleeper.poll() is None  # a detached node is never reaped


def test_detach_marks_the_claim(cache: Path) -> None:
    mine = claim(cache, "demo")
    mine.detach()
    assert node.RealNode.claim_file().read_text().split()[1] == "detached"
    mine.release()

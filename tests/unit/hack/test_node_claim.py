"""One real node per machine: the claim waits for a running node, frees a stopped one, reaps the
node of an owner killed hard, and waits for a detached one (make demo) until it is stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

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


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def claim(cache: Path, name: str, timeout: float = 0.0) -> tuple[node.RealNode, FakeCluster]:
    cluster = FakeCluster(cache / name)
    real = node.RealNode(cluster)  # type: ignore[arg-type]
    real.acquire(timeout)
    return real, cluster


def test_a_stopped_node_frees_the_claim(cache: Path) -> None:
    first, cluster = claim(cache, "a")
    cluster.pids(containerd=dead_pid(), kubelet=dead_pid())
    second, _ = claim(cache, "b")  # the first one's node no longer runs
    assert (cache / "b").name in node.RealNode.claim_file().read_text()
    second.release()
    assert node.RealNode.claim_file().read_text() == ""
    first.release()  # not its claim any more: nothing changes


def test_a_running_node_of_a_live_owner_makes_others_wait(cache: Path) -> None:
    _, cluster = claim(cache, "a")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)  # fmt: skip
    try:
        cluster.pids(containerd=sleeper.pid)
        with pytest.raises(ClusterError, match="wait for its tests to end"):
            claim(cache, "b", timeout=0)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_node_of_an_owner_killed_hard_is_reaped(cache: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)  # fmt: skip
    cluster = FakeCluster(cache / "orphan")
    cluster.pids(containerd=sleeper.pid)
    node.RealNode.claim_file().parent.mkdir(parents=True, exist_ok=True)
    node.RealNode.claim_file().write_text(f"{dead_pid()} process {cluster.root}\n")
    claim(cache, "b")
    assert sleeper.wait(10) != 0  # killed with its session


def test_a_detached_node_waits_for_its_down(cache: Path, monkeypatch: Any) -> None:
    demo, cluster = claim(cache, "demo")
    demo.detach()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)  # fmt: skip
    try:
        cluster.pids(kubelet=sleeper.pid)
        node.RealNode.claim_file().write_text(f"{dead_pid()} detached {cluster.root}\n")
        with pytest.raises(ClusterError, match="make demo-down"):
            claim(cache, "tests", timeout=0)
        assert sleeper.poll() is None  # a detached node is never reaped
    finally:
        sleeper.kill()
        sleeper.wait()

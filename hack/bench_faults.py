"""``make bench-faults``: the operator and cluster faults of ``test_faults.py`` at 1,000
ModelDeployments, timed, written to RELIABILITY.md between its ``operator-faults`` markers.

A fresh tier-C cluster with two kwok nodes and the operator as its ServiceAccount. The fleet
(``hack.testbed.fleet``, each object a one-step canary, so every version change creates a canary
Deployment, promotes it and deletes it) is filled, then each fault is injected in the middle of
a burst of spec changes to every object: the apiserver restarted, etcd stopped for longer than
kopf's own retries last (54 s), the operator ``kill -9``'d and started again; and a node lost
(deleted) with half the pods on it. After each, the time until every object has converged
(``fleet.problems`` empty: status done, exactly one Deployment each, history complete), the
client requests the faults made the bench send again, what was lost, and the operator's RSS.
A benchmark, not a test: it never fails on timing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hack.bench_operator import rss_mib
from hack.cluster.base import ROOT
from hack.cluster.localcluster import NODE_NAME, LocalCluster
from hack.testbed.fleet import FAST_CANARY, Fleet, FleetError, problems
from hack.testbed.operator import OperatorProcess, install_manifests

BEGIN = "<!-- BEGIN operator-faults"
END = "<!-- END operator-faults -->"
MARKER = (
    "<!-- BEGIN operator-faults (written by `make bench-faults`; the tests are "
    "tests/integration/cluster/test_faults.py) -->"
)
LOST_NODE = "kwok-node-1"
STRATEGIES = {
    "Immediate": "Each version change rolls its Deployment directly (`strategy: Immediate`); "
    "the tests (`make test`) run the one-step canary version at 40 objects.",
    "Canary": "Each object is a one-step canary with no checks, so every version change "
    "creates, promotes and deletes a canary Deployment per object.",
}
NAMESPACE = "bench"


@dataclasses.dataclass
class Row:
    fault: str
    injected: str
    objects: int
    converge_s: float | None  # None: not converged within the bound
    resent: int
    lost: int  # problems left at the end: objects not converged, Deployments missing or extra
    operator: str  # alive / restarted by the bench
    rss_mib: float
    peak_mib: float


class Bench:
    def __init__(
        self, cluster: LocalCluster, operator: OperatorProcess, count: int, strategy: str
    ) -> None:
        self.cluster, self.operator = cluster, operator
        rollout = {**FAST_CANARY, "strategy": strategy}
        self.fleet = Fleet(cluster, NAMESPACE, rollout=rollout)
        self.names = [f"f-{i:04d}" for i in range(count)]
        self.rows: list[Row] = []
        self.version = 1
        self.on_row: Callable[[list[Row]], None] | None = None

    def pid(self) -> int:
        assert self.operator.process is not None
        return self.operator.process.popen.pid

    def converge(self, timeout: float) -> tuple[float | None, int]:
        try:
            return self.fleet.wait_converged(timeout, poll=3.0), 0
        except FleetError:
            return None, len(problems(self.fleet.expected, *self.fleet.snapshot()))

    def record(self, fault: str, injected: str, started: float, timeout: float,
               resent_before: int, operator: str) -> None:  # fmt: skip
        seconds, lost = self.converge(timeout)
        total = None if seconds is None else time.monotonic() - started
        row = Row(
            fault, injected, len(self.names), total, self.fleet.resent - resent_before, lost,
            operator, rss_mib(self.pid()), rss_mib(self.pid(), "VmHWM"),
        )  # fmt: skip
        self.rows.append(row)
        print(json.dumps(dataclasses.asdict(row)), flush=True)
        if self.on_row is not None:  # the table so far, in case a later fault never ends
            self.on_row(self.rows)

    def burst_with(self, fault: str, injected: str, inject: Callable[[], str],
                   timeout: float) -> None:  # fmt: skip
        """Every object to the next version; ``inject`` runs once a tenth of the burst has
        been sent, and returns what became of the operator."""
        self.version += 1
        resent = self.fleet.resent
        started = time.monotonic()
        sending = threading.Thread(target=self.fleet.change, args=(self.names, f"v{self.version}"))
        sending.start()
        while (
            len([n for n in self.names if self.fleet.expected[n] == f"v{self.version}"])
            < len(self.names) // 10
            and sending.is_alive()
        ):
            time.sleep(0.05)  # waiting for the burst to be under way
        operator = inject()
        sending.join()
        self.record(fault, injected, started, timeout, resent, operator)

    def fill(self, timeout: float) -> None:
        started = time.monotonic()
        self.fleet.create(self.names)
        self.record("none: fill", "create every object", started, timeout, 0, "alive")

    def restart_apiserver(self, timeout: float) -> None:
        def inject() -> str:
            self.cluster.restart_apiserver()
            return "alive" if self.alive() else "EXITED"

        self.burst_with(
            "apiserver restarted", "SIGTERM (SIGKILL after 5 s), started again", inject, timeout
        )

    def stop_etcd(self, outage: float, timeout: float) -> None:
        def inject() -> str:
            self.cluster.stop_etcd()
            time.sleep(outage)  # the outage
            survived = self.alive()
            self.cluster.start_etcd()
            return "alive" if survived and self.alive() else "EXITED"

        self.burst_with("etcd stopped", f"down {outage:.0f} s", inject, timeout)

    def kill_operator(self, timeout: float) -> None:
        def inject() -> str:
            self.operator.kill()
            self.operator.start()
            return "killed, started again"

        self.burst_with("operator kill -9", "SIGKILL mid-burst", inject, timeout)

    def lose_node(self, timeout: float) -> None:
        on_node = len(self.pods_on(LOST_NODE))
        resent = self.fleet.resent
        started = time.monotonic()
        self.cluster.remove_node(LOST_NODE)
        deadline = started + timeout
        while self.pods_on(LOST_NODE) and time.monotonic() < deadline:
            time.sleep(2)  # the controller-manager's pod GC takes its time
        self.record("node lost", f"node deleted, {on_node} pods on it", started,
                    max(1.0, deadline - time.monotonic()), resent,
                    "alive" if self.alive() else "EXITED")  # fmt: skip

    def pods_on(self, node: str) -> list[str]:
        path = f"/api/v1/namespaces/{NAMESPACE}/pods?fieldSelector=spec.nodeName%3D{node}"
        return [p["metadata"]["name"] for p in self.fleet.items(path)
                if not p["metadata"].get("deletionTimestamp")]  # fmt: skip

    def alive(self) -> bool:
        return self.operator.process is not None and self.operator.process.popen.poll() is None


def run(
    count: int, outage: float, timeout: float, strategy: str,
    on_row: Callable[[list[Row]], None] | None = None,
) -> list[Row]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="modelyard-faults-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", tier="C", pod_cidr="127.60.0.0/16")
        cluster.up()
        try:
            cluster.add_fake_node(LOST_NODE)
            install_manifests(cluster)
            cluster.create_namespace(NAMESPACE)
            config = cluster.service_account_kubeconfig(
                "modelyard-system", "modelyard-operator", Path(tmp) / "operator.kubeconfig"
            )
            env = {"MODELYARD_OPERATOR_LOG_LEVEL": "WARNING", "MALLOC_ARENA_MAX": "2"}
            operator = OperatorProcess(config, env=env)
            operator.start()
            try:
                bench = Bench(cluster, operator, count, strategy)
                bench.on_row = on_row
                bench.fill(timeout)
                bench.restart_apiserver(timeout)
                bench.stop_etcd(outage, timeout)
                bench.kill_operator(timeout)
                bench.lose_node(timeout)
                return bench.rows
            finally:
                print("operator log (last 3000 chars):\n" + operator.log[-3000:], file=sys.stderr)
                operator.stop()
        finally:
            cluster.down()


def table(rows: list[Row], command: str, seconds: float, strategy: str) -> str:
    date = datetime.date.today().isoformat()
    lines = [
        MARKER,
        f"`{command}` on {date}: a fresh tier-C cluster (etcd, kube-apiserver, "
        f"controller-manager, scheduler, kwok with {NODE_NAME} and {LOST_NODE}) and the operator "
        "as its ServiceAccount, all on the 2 shared vCPUs (shared with other work). "
        + STRATEGIES[strategy]
        + " The fault is injected once a tenth of the burst (one new model version for every "
        "object) is sent. *Converged* is from the burst's start (the node: its deletion) until "
        "every object's status reports its latest spec Ready, it owns exactly one Deployment (the "
        "stable one, of that revision) and its Service, no Deployment is left without an owner "
        "and every "
        "revision its ReplicaSets ran is in `status.history` (`hack/testbed/fleet.py`). "
        "*Resent*: the bench's own requests that met the fault and were sent again (none was "
        "lost). *Lost*: what was still wrong at the bound (target 0). RSS: the operator process "
        "now / its peak.",
        "",
        "| fault | injected | objects | converged | resent | lost | operator | RSS / peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        converged = f"{r.converge_s:.0f} s" if r.converge_s is not None else "**not**"
        lines.append(
            f"| {r.fault} | {r.injected} | {r.objects} | {converged} | {r.resent} | "
            f"**{r.lost}** | {r.operator} | {r.rss_mib:.0f} / {r.peak_mib:.0f} MiB |"
        )
    lines += ["", f"The whole run took {seconds / 60:.0f} min.", END]
    return "\n".join(lines)


def write_reliability(section: str) -> None:
    path = ROOT / "RELIABILITY.md"
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + section + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--etcd-outage", type=float, default=75.0, help="seconds etcd is down")
    parser.add_argument("--timeout", type=float, default=1200.0, help="bound on each converge")
    parser.add_argument(
        "--strategy", choices=("Immediate", "Canary"), default="Immediate",
        help="how each version change rolls out (Canary: a one-step canary with no checks)",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "hack" / "cluster" / "build.sh")], check=True, stdout=sys.stderr)
    started = time.monotonic()
    flags = f"--count {args.count} --etcd-outage {args.etcd_outage:g} --strategy {args.strategy}"
    command = f"make bench-faults  # {flags}"

    def partial(rows: list[Row]) -> None:
        if not args.no_write:
            write_reliability(table(rows, command, time.monotonic() - started, args.strategy))

    rows = run(args.count, args.etcd_outage, args.timeout, args.strategy, partial)
    section = table(rows, command, time.monotonic() - started, args.strategy)
    print(section)
    if not args.no_write:
        write_reliability(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

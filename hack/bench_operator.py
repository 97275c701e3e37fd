"""``make bench-operator``: apply -> Deployment-created latency with 1,000 ModelDeployments live.

Starts a fresh local cluster (tier C) and the operator as its ServiceAccount, then creates
ModelDeployments through the API at a steady rate (``--rate``, default 3/s, about what a
2-vCPU machine running the whole control plane sustains) while a watch on Deployments records
when each child appears. Phase 1 fills the cluster to ``--count`` objects; phase 2 creates
``--probes`` more, one at a time, with all of them live. Then the operator is restarted. Reports
p50/p99/max for both phases and the operator's RSS (live, and after the restart: its peak and at
rest), and writes them to ``BENCHMARKS.md`` between markers. A benchmark, not a test: it never
fails on timing.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hack.bench.report import write_section
from hack.cluster.base import ROOT
from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess, install_manifests

BEGIN, END = "<!-- bench-operator:begin -->", "<!-- bench-operator:end -->"
REST_SECONDS = 65


class Api:
    """Admin HTTPS connection to the apiserver (one per thread)."""

    def __init__(self, cluster: LocalCluster) -> None:
        host, port = cluster.server.removeprefix("https://").split(":")
        context = ssl.create_default_context(cafile=str(cluster.pki.ca))
        context.load_cert_chain(str(cluster.pki.cert("admin")), str(cluster.pki.key("admin")))
        self.host, self.port, self.context = host, int(port), context

    def connect(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=timeout
        )


class DeploymentWatch(threading.Thread):
    """Records the monotonic time each operator-made Deployment is first seen."""

    def __init__(self, api: Api, namespace: str) -> None:
        super().__init__(daemon=True)
        self.api, self.namespace = api, namespace
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        conn = self.api.connect(timeout=3600)
        path = (
            f"/apis/apps/v1/namespaces/{self.namespace}/deployments?watch=1"
            "&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmodelyard-operator"
        )
        conn.request("GET", path)
        response = conn.getresponse()
        self.ready.set()
        while line := response.readline():
            event = json.loads(line)
            name = event["object"]["metadata"]["name"]
            if event["type"] == "ADDED":
                self.seen.setdefault(name, time.monotonic())


def create(conn: http.client.HTTPSConnection, namespace: str, name: str) -> float:
    body = json.dumps(md_manifest(name, replicas=1))
    path = f"/apis/serving.modelyard.io/v1alpha1/namespaces/{namespace}/modeldeployments"
    started = time.monotonic()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        raise SystemExit(f"create {name}: HTTP {response.status}")
    return started


def wait_seen(watch: DeploymentWatch, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(n not in watch.seen for n in names):
        if time.monotonic() > deadline:
            missing = [n for n in names if n not in watch.seen]
            raise SystemExit(f"{len(missing)} Deployments never appeared, e.g. {missing[:3]}")
        time.sleep(0.05)  # polling the watch thread's record with a deadline


def wait_all_ready(api: Api, namespace: str, count: int, timeout: float) -> None:
    """Steady state: every ModelDeployment reports phase Ready (a new connection per poll: the
    apiserver may close one that sat idle through the fill)."""
    path = f"/apis/serving.modelyard.io/v1alpha1/namespaces/{namespace}/modeldeployments"
    deadline = time.monotonic() + timeout
    while True:
        conn = api.connect()
        conn.request("GET", path)
        items = json.loads(conn.getresponse().read())["items"]
        conn.close()
        ready = sum(1 for i in items if (i.get("status") or {}).get("phase") == "Ready")
        if ready >= count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {ready}/{count} ModelDeployments Ready after {timeout} s")
        time.sleep(1.0)  # polling the API server with a deadline


def start_canaries(api: Api, namespace: str, names: list[str]) -> None:
    """Move each of ``names`` to a v2 whose canary holds at its first step (a 1-hour pause, no
    checks): ModelDeployments mid-canary, as in a busy cluster."""
    conn = api.connect()
    rollout = {"steps": [{"weight": 10, "pause": "1h"}], "analysis": {"metrics": []}}
    patch = json.dumps({"spec": {"model": {"version": "v2"}, "rollout": rollout}})
    base = f"/apis/serving.modelyard.io/v1alpha1/namespaces/{namespace}/modeldeployments"
    for name in names:
        conn.request("PATCH", f"{base}/{name}", body=patch,
                     headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"patch of {name} failed: {response.status}")


def wait_canaries(api: Api, namespace: str, count: int, timeout: float) -> None:
    """Until ``count`` ModelDeployments hold a canary at its first step, weight reached."""
    path = f"/apis/serving.modelyard.io/v1alpha1/namespaces/{namespace}/modeldeployments"
    deadline = time.monotonic() + timeout
    while True:
        conn = api.connect()
        conn.request("GET", path)
        items = json.loads(conn.getresponse().read())["items"]
        conn.close()
        held = sum(1 for i in items if ((i.get("status") or {}).get("canary") or {}).get(
            "stepStartedAt"))  # fmt: skip
        if held >= count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {held}/{count} canaries at their step after {timeout} s")
        time.sleep(1.0)  # polling the API server with a deadline


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": p99 * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its peak (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(count: int, probes: int, rate: float, canaries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", tier="C")
        cluster.up()
        try:
            install_manifests(cluster)
            cluster.create_namespace("bench")
            config = cluster.service_account_kubeconfig(
                "modelyard-system", "modelyard-operator", Path(tmp) / "operator.kubeconfig"
            )
            # As in the operator Deployment: two malloc arenas, not one per thread.
            env = {"MODELYARD_OPERATOR_LOG_LEVEL": "WARNING", "MALLOC_ARENA_MAX": "2"}
            operator = OperatorProcess(config, env=env)
            operator.start()
            try:
                return measure(cluster, operator, count, probes, rate, canaries)
            finally:
                operator.stop()
        finally:
            cluster.down()


def measure(
    cluster: LocalCluster,
    operator: OperatorProcess,
    count: int,
    probes: int,
    rate: float,
    canaries: int,
) -> dict[str, Any]:
    api = Api(cluster)
    watch = DeploymentWatch(api, "bench")
    watch.start()
    watch.ready.wait(30)
    conn = api.connect()
    started: dict[str, float] = {}
    begin = time.monotonic()
    for i in range(count):
        name = f"fill-{i:04d}"
        started[name] = create(conn, "bench", name)
        pause = begin + (i + 1) / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # pacing the creates at a steady rate
    fill_names = list(started)
    wait_seen(watch, fill_names, timeout=600)
    fill = [watch.seen[n] - started[n] for n in fill_names]
    fill_seconds = time.monotonic() - begin
    print(f"fill: {summary(fill)} in {fill_seconds:.0f} s", flush=True)
    assert operator.process is not None
    pid = operator.process.popen.pid
    settle_started = time.monotonic()
    wait_all_ready(api, "bench", count, timeout=600)
    conn = api.connect()
    settle = time.monotonic() - settle_started
    rss_full = rss_mib(pid)
    probe_names = []
    for i in range(probes):
        name = f"probe-{i:03d}"
        started[name] = create(conn, "bench", name)
        wait_seen(watch, [name], timeout=60)
        probe_names.append(name)
    probe = [watch.seen[n] - started[n] for n in probe_names]
    print(f"probes: {summary(probe)}", flush=True)
    peak, rss_end = rss_mib(pid, "VmHWM"), rss_mib(pid)
    start_canaries(api, "bench", fill_names[:canaries])
    canary_started = time.monotonic()
    wait_canaries(api, "bench", canaries, timeout=600)
    canary_seconds = time.monotonic() - canary_started
    rss_canaries = rss_mib(pid)
    print(f"{canaries} canaries at their step in {canary_seconds:.0f} s, RSS {rss_canaries:.0f}",
          flush=True)  # fmt: skip
    # A restart: resume every object from the initial listing, then the resident size at rest.
    operator.stop()
    resume_started = time.monotonic()
    operator.start()
    total = count + probes
    stalls = 0
    while True:
        try:
            if operator.metric("modelyard_operator_reconcile_total") >= total:
                break
        except OSError:  # its event loop is busy resuming: the metrics page waits its turn
            stalls += 1
        if time.monotonic() - resume_started > 600:
            raise SystemExit("the restarted operator did not resume every object in 600 s")
        time.sleep(0.5)  # polling the operator's metrics with a deadline
    resume = time.monotonic() - resume_started
    assert operator.process is not None
    resumed_rss = rss_mib(operator.process.popen.pid)
    resumed_peak = rss_mib(operator.process.popen.pid, "VmHWM")
    time.sleep(REST_SECONDS)  # at rest: a minute after the resume finished
    rest_rss = rss_mib(operator.process.popen.pid)
    return {
        "count": count,
        "rate": rate,
        "fill": summary(fill),
        "probe": summary(probe),
        "rss_mib": max(rss_full, rss_end),
        "canaries": canaries,
        "canary_seconds": canary_seconds,
        "canary_rss_mib": rss_canaries,
        "peak_rss_mib": peak,
        "resume_seconds": resume,
        "resume_metric_timeouts": stalls,
        "resumed_rss_mib": resumed_rss,
        "resumed_peak_mib": resumed_peak,
        "rest_rss_mib": rest_rss,
        "fill_seconds": fill_seconds,
        "settle_seconds": settle,
    }


def write_benchmarks(result: dict[str, Any], command: str) -> None:
    fill, probe = result["fill"], result["probe"]
    date = datetime.date.today().isoformat()
    section = f"""{BEGIN}
## Operator at {result["count"]} ModelDeployments

`{command}` on {date}, 2 shared vCPUs, local tier-C cluster (etcd, kube-apiserver,
controller-manager, scheduler, kwok) on the same machine, operator as its ServiceAccount.
Latency is from the create request leaving the client to the operator's Deployment arriving on a
watch. Targets: p99 < 1 s with 1,000 live, operator RSS < 200 MiB.

| phase | objects | p50 | p99 | max |
|---|---|---|---|---|
| filling to {result["count"]} at {result["rate"]:g}/s | {fill["n"]} | {fill["p50_ms"]:.0f} ms | {fill["p99_ms"]:.0f} ms | {fill["max_ms"]:.0f} ms |
| one at a time, {result["count"]} live and all Ready | {probe["n"]} | {probe["p50_ms"]:.0f} ms | {probe["p99_ms"]:.0f} ms | {probe["max_ms"]:.0f} ms |

Filling took {result["fill_seconds"]:.0f} s for {result["count"]} creates paced at {result["rate"]:g}/s
({result["count"] / result["rate"]:.0f} s if the machine kept up). The apiserver, etcd,
controller-manager, scheduler, kwok (each pod marked Running and Ready), the operator and the
client share 2 vCPUs; 3/s (the default `--rate`) is about what this machine's control plane
sustains. At 10/s it falls behind, and the fill latencies measure that backlog (the table
below).
Every ModelDeployment was Ready {result["settle_seconds"]:.0f} s later. Operator RSS with
{result["count"] + probe["n"]} live: **{result["rss_mib"]:.0f} MiB** (peak during the fill
{result["peak_rss_mib"]:.0f} MiB). Restarted with all {result["count"] + probe["n"]} live, the
operator resumed every object in {result["resume_seconds"]:.0f} s, peaking at
{result["resumed_peak_mib"]:.0f} MiB, and held **{result["rest_rss_mib"]:.0f} MiB** a minute
later, at rest.

With {result["canaries"]} of them mid-canary (a v2 held at its first step: a canary Deployment
next to the stable one, the rollout state in status), reached in {result["canary_seconds"]:.0f} s:
operator RSS **{result["canary_rss_mib"]:.0f} MiB**. The restart above resumed those canaries
too, each at the step it was at.
{END}"""  # noqa: E501
    write_section(ROOT / "BENCHMARKS.md", section, BEGIN, END)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=3.0, help="creates per second when filling")
    parser.add_argument("--canaries", type=int, default=100, help="how many go mid-canary")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "hack" / "cluster" / "build.sh")], check=True, stdout=sys.stderr)
    result = run(args.count, args.probes, args.rate, args.canaries)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        flags = (
            f"--count {args.count} --probes {args.probes} --rate {args.rate:g} "
            f"--canaries {args.canaries}"
        )
        command = f"make bench-operator  # {flags}"
        write_benchmarks(result, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())

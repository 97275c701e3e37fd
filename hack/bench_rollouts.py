"""``make bench-rollouts``: canary promotion and rollback on real pods, at realistic intervals.

A fresh local cluster with the real node (tier D) and Prometheus (scraping every 2 s), the
operator as its ServiceAccount querying it, v1 (a tiny model) on 4 real pods and steady
kept-alive load through the Service's ClusterIP (4 clients, 20 requests/s each). Then:

1. a healthy v2 (same size) through the default analysis (error rate, p99 against the stable),
   steps 25% then 50% with 1-minute pauses, a 30 s interval: promoted; failed requests counted;
2. a genuinely slower v3 (tens of ms a row) with a p99 bound of 10 ms, one 50% step, a 30 s
   interval and ``failureThreshold: 1``: rolled back. Timed from the breach being visible in
   Prometheus (the analysis's own query, polled every 0.5 s) to the decision (phase
   RollingBack), to the canary at 0 traffic (its last answer to the load) and to the stable at
   full size again; failed requests counted.

Writes the numbers to ``BENCHMARKS.md`` between markers. A benchmark, not a test: it never fails
on timing.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import http.server
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hack.bench.report import write_section
from hack.cluster import images, node
from hack.cluster.base import NODE_IP, ROOT
from hack.cluster.localcluster import LocalCluster
from hack.testbed import onnx_models
from hack.testbed.load import SteadyLoad
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess, install_manifests

BEGIN, END = "<!-- bench-rollouts:begin -->", "<!-- bench-rollouts:end -->"
NS, NAME, REPLICAS = "bench", "fraud", 4


def poll(check: Callable[[], bool], timeout: float, what: str, period: float = 0.5) -> float:
    """Poll ``check``; the monotonic time it first passed."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(period)  # polling with a deadline
    return time.monotonic()


class Bench:
    def __init__(self, cluster: LocalCluster, store: Path, url: str, image: str) -> None:
        self.cluster, self.store, self.url, self.image = cluster, store, url, image

    def status(self) -> dict[str, Any]:
        out = self.cluster.kubectl("-n", NS, "get", "mdep", NAME, "-o", "json").stdout
        return dict(json.loads(out).get("status") or {})

    def apply(self, model: Path, version: str, rollout: dict[str, Any]) -> None:
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        manifest = md_manifest(NAME, uri=f"{self.url}/{model.name}", version=version,
                               replicas=REPLICAS, sha256=digest, extra_spec={
            "runtime": {"image": self.image, "imagePullPolicy": "Never",
                        "warmup": {"batchSizes": [1]}},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "scheduling": {"nodeSelector": node.node_selector(),
                           "tolerations": [node.toleration()]},
            "rollout": rollout,
        })  # fmt: skip
        manifest["metadata"]["namespace"] = NS
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def serving(self, version: str) -> bool:
        status = self.status()
        return status.get("phase") == "Ready" and status.get("stable", {}).get("version") == version

    def prometheus(self, promql: str) -> list[float]:
        query = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.cluster.prometheus_url}/api/v1/query?{query}",
                                    timeout=10) as response:  # fmt: skip
            data = json.loads(response.read())["data"]
        return [float(s["value"][1]) for s in data["result"]]

    def promotion(self, load: SteadyLoad) -> dict[str, Any]:
        v2 = onnx_models.tiny_model(self.store / "v2.onnx", 3.0)
        started = time.monotonic()
        self.apply(v2, "v2", {"steps": [{"weight": 25, "pause": "1m"},
                                        {"weight": 50, "pause": "1m"}],
                              "analysis": {"interval": "30s", "minSampleCount": 50}})  # fmt: skip
        done = poll(lambda: self.serving("v2"), 900, "v2 promoted", period=2)
        return {"seconds": done - started, "requests": len(load.snapshot()),
                "failed": len(load.failures(since=started))}  # fmt: skip

    def rollback(self, load: SteadyLoad) -> dict[str, Any]:
        v3 = onnx_models.slow_model(self.store / "v3.onnx")
        started = time.monotonic()
        self.apply(v3, "v3", {"steps": [{"weight": 50, "pause": "5m"}],
                              "analysis": {"interval": "30s", "failureThreshold": 1,
                                           "minSampleCount": 20, "metrics": [
                                  {"name": "latency-p99",
                                   "latency": {"quantile": 0.99, "max": "10ms"}}]}})  # fmt: skip
        p99 = ("histogram_quantile(0.99, sum by (le) (rate(modelyard_request_duration_seconds_"
               f'bucket{{namespace="{NS}",model="{NAME}",track="canary"}}[30s])))')  # fmt: skip
        visible = poll(lambda: any(v > 0.010 for v in self.prometheus(p99)), 600,
                       "the breach in Prometheus")  # fmt: skip
        decided = poll(lambda: self.status().get("phase") == "RollingBack", 300, "the decision")
        rolled = poll(lambda: bool(self.status().get("rolledBack")), 300, "the rollback", 0.5)
        full_at = poll(self.stable_full, 300, "the stable at full size")
        last = load.last_answer_from("v3") or rolled
        return {
            "decision_s": decided - visible,
            "zero_traffic_s": last - visible,
            "stable_full_s": max(full_at, decided) - visible,
            "finished_s": rolled - visible,
            "requests": len([r for r in load.snapshot() if r.started >= started]),
            "failed": len(load.failures(since=started)),
            "reason": self.status()["rolledBack"]["reason"],
        }

    def stable_full(self) -> bool:
        out = self.cluster.kubectl("-n", NS, "get", "deployment", NAME, "-o", "json").stdout
        return int(json.loads(out).get("status", {}).get("readyReplicas", 0)) >= REPLICAS


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        root = Path(tmp)
        cluster = LocalCluster(root / "cluster", tier="D", prometheus=True)
        cluster.up()
        server = None
        try:
            install_manifests(cluster)
            cluster.create_namespace(NS)
            image = images.load("runtime", node.RealNode(cluster), root)
            store = root / "models"
            store.mkdir()
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(store))
            server = http.server.ThreadingHTTPServer((NODE_IP, 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://{NODE_IP}:{server.server_address[1]}"
            config = cluster.service_account_kubeconfig(
                "modelyard-system", "modelyard-operator", root / "operator.kubeconfig"
            )
            operator = OperatorProcess(config, env={
                "MODELYARD_OPERATOR_PROMETHEUS_URL": cluster.prometheus_url,
                "MODELYARD_OPERATOR_LOG_LEVEL": "WARNING"})  # fmt: skip
            operator.start()
            try:
                bench = Bench(cluster, store, url, image)
                bench.apply(onnx_models.tiny_model(store / "v1.onnx"), "v1", {})
                poll(lambda: bench.serving("v1"), 300, "v1 Ready", period=2)
                service = json.loads(cluster.kubectl("-n", NS, "get", "svc", NAME, "-o",
                                                     "json").stdout)  # fmt: skip
                with SteadyLoad(service["spec"]["clusterIP"], 8080, NAME, clients=4,
                                rate=20) as load:  # fmt: skip
                    poll(lambda: load.versions()["v1"] > 100, 60, "load on v1")
                    promotion = bench.promotion(load)
                    print("promotion:", promotion, flush=True)
                    rollback = bench.rollback(load)
                    print("rollback:", rollback, flush=True)
                return {"promotion": promotion, "rollback": rollback}
            finally:
                operator.stop()
        finally:
            if server is not None:
                server.shutdown()
            cluster.down()


def write_benchmarks(result: dict[str, Any]) -> None:
    promotion, rollback = result["promotion"], result["rollback"]
    date = datetime.date.today().isoformat()
    section = f"""{BEGIN}
## Canary rollouts on real pods (`make bench-rollouts`)

`make bench-rollouts` on {date}, 2 shared vCPUs: the local cluster with the real node and
Prometheus (scrape interval 2 s), the operator as its ServiceAccount, v1 on {REPLICAS} real pods,
steady kept-alive load through the Service's ClusterIP (4 clients at 20 requests/s).

| scenario | interval | result | time | requests | failed |
|---|---|---|---|---|---|
| healthy v2, steps 25% and 50% with 1 min pauses, default checks | 30 s | promoted | {promotion["seconds"]:.0f} s | {promotion["requests"]} | **{promotion["failed"]}** |
| slower v3 (p99 bound 10 ms), one 50% step, `failureThreshold: 1` | 30 s | rolled back | see below | {rollback["requests"]} | **{rollback["failed"]}** |

Rollback reaction, from the breach being visible in Prometheus (the analysis's own query, polled
every 0.5 s): decision (phase RollingBack) **{rollback["decision_s"]:.1f} s**; stable at full size
**{rollback["stable_full_s"]:.1f} s**; canary at 0 traffic (its last answer) **{rollback["zero_traffic_s"]:.1f} s**;
rollback recorded {rollback["finished_s"]:.1f} s. Target: within one analysis interval (30 s).
The reason recorded: `{rollback["reason"]}`.
{END}"""  # noqa: E501
    write_section(ROOT / "BENCHMARKS.md", section, BEGIN, END)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "hack" / "cluster" / "build.sh"), "--with-prometheus"], check=True,
                   stdout=sys.stderr)  # fmt: skip
    result = run()
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_benchmarks(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

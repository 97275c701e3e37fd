"""The live setup the dashboards are proven on and drawn from.

A local cluster (tier C) with its real Prometheus; the operator, run as its ServiceAccount,
querying that Prometheus for its canary analysis and scraped as job ``modelyard-operator``; a
ModelDeployment ``iris`` whose kwok pods are served by real ``modelyard-runtime`` processes on
the pods' loopback IPs, with the env the operator rendered into each pod (``Pods`` plays the
kubelet: it serves every pod that gets an IP and stops the process of a pod that is gone).
The operator's own canary rollouts run on it: v1 rolls out, a v2 canary is aborted (a finished
rollout), and a v3 canary (with a short deadline and queue, so it answers some 504s and 429s)
holds at its first step with passing checks. Client traffic (``hack.grafana.traffic``) adds
400s and 404s, and the ModelDeployment is relabelled now and then so the operator reconciles.
The alert rules are loaded into Prometheus. Used by
``tests/integration/cluster/test_dashboards_live.py`` and ``make dashboards-preview``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from hack import alerts
from hack.cluster.base import ROOT, wait_until
from hack.cluster.localcluster import LocalCluster
from hack.grafana.traffic import Traffic
from hack.testbed import onnx_models
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess, install_manifests
from hack.testbed.processes import RuntimeProcess

NAMESPACE: Final = "modelyard-observe"
NAME: Final = "iris"
OPERATOR_NAMESPACE: Final = "modelyard-system"
NAME_LABEL: Final = "serving.modelyard.io/deployment"
TRACK_LABEL: Final = "serving.modelyard.io/track"
# Every canary holds its first step (an hour), judged on checks it always passes, every 5 s.
ROLLOUT: Final = {
    "steps": [{"weight": 50, "pause": "1h"}],
    "analysis": {"interval": "5s", "minSampleCount": 1, "metrics": [
        {"name": "error-rate", "errorRate": {"max": 1.0}},
        {"name": "latency-p99", "latency": {"quantile": 0.99, "max": "10s"}},
    ]},
}  # fmt: skip
# v3 batches up to 2 requests, waits 25 ms for the second, and gives each request 20 ms: a pair
# is served at once, a single request times out (504), a burst overflows the queue (429).
TIGHT: Final = {"maxBatchSize": 2, "maxQueueDelayMs": 25, "maxQueueSize": 4, "timeoutMs": 20}
FACTORS: Final = {"v1": 2.0, "v2": 3.0, "v3": 4.0}  # each version's model: y = factor * x
# Values of the dashboards' variables that select this setup (multi-value form for two).
VARIABLES: Final = {
    "datasource": "prometheus",
    "namespace": NAMESPACE,
    "model": NAME,
    "modeldeployment": NAME,
    "version": "(v1|v3)",
    "track": "(stable|canary)",
}


def operator_scrape_config(targets: Path) -> dict[str, object]:
    """The operator as a file-discovered target (its port is known only once it runs), labelled
    as a ServiceMonitor would; ``honor_labels`` keeps its series' own ``namespace``."""
    return {
        "job_name": alerts.OPERATOR_JOB,
        "honor_labels": True,
        "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "2s"}],
    }


def query(prometheus: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """The result of an instant query; raises on a query Prometheus refuses."""
    params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise ValueError(f"Prometheus refused {expr!r}: {e.read().decode()}") from e
    return list(body["data"]["result"])


def query_range(
    prometheus: str, expr: str, *, start: float, end: float, step: float
) -> list[dict[str, Any]]:
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    url = f"{prometheus}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise ValueError(f"Prometheus refused {expr!r}: {e.read().decode()}") from e
    return list(body["data"]["result"])


def label_values(prometheus: str, label: str, match: str) -> list[str]:
    params = urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(f"{prometheus}/api/v1/label/{label}/values?{params}") as response:
        return list(json.loads(response.read())["data"])


def rule_groups(prometheus: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as response:
        return list(json.loads(response.read())["data"]["groups"])


def poll(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    wait_until(check, timeout=timeout, what=what, log=None)


class Pods:
    """Plays the kubelet for the ModelDeployment's kwok pods: every pod that has an IP gets a
    real ``modelyard-runtime`` process on it, with the pod's env and its version's model; the
    process of a pod that is gone (or going) is stopped. ``addresses`` and ``canary`` say where
    clients find the pods now."""

    def __init__(self, setup: LiveSetup, models: dict[str, Path]) -> None:
        self.setup = setup
        self.models = models
        self.servers: dict[str, RuntimeProcess] = {}  # pod name -> its server
        self.addresses: dict[str, str] = {}  # pod name -> its IP
        self.canary = ""  # the canary pod's name, if one is served
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pods", daemon=True)

    def start(self) -> Pods:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):  # a failed listing is tried again
                self.sync()

    def sync(self) -> None:
        out = self.setup.cluster.kubectl(
            "-n", NAMESPACE, "get", "pods", "-l", f"{NAME_LABEL}={NAME}", "-o", "json"
        )
        pods = {
            p["metadata"]["name"]: p
            for p in json.loads(out.stdout)["items"]
            if (p.get("status") or {}).get("podIP")
        }
        # A terminating pod is still served (and scraped), as a kubelet would, but gets no
        # new clients; its process stops when the pod is gone.
        for name, pod in pods.items():
            if pod["metadata"].get("deletionTimestamp"):
                self.addresses.pop(name, None)
                if name == self.canary:
                    self.canary = ""
        for name in [n for n in self.servers if n not in pods]:
            self.addresses.pop(name, None)
            if name == self.canary:
                self.canary = ""
            server = self.servers.pop(name)
            server.terminate()
            with contextlib.suppress(Exception):
                server.wait(30)
            server.kill()
        for name, pod in sorted(pods.items()):
            if name not in self.servers and not pod["metadata"].get("deletionTimestamp"):
                self._serve(pod)

    def _serve(self, pod: dict[str, Any]) -> None:
        """Run the pod's runtime container as a process on the pod's IP, with the pod's env."""
        name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
        (container,) = (c for c in pod["spec"]["containers"] if c["name"] == "runtime")
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        env.update(
            MODELYARD_MODEL_PATH=str(self.models[env["MODELYARD_MODEL_VERSION"]]),
            MODELYARD_HOST=ip,
            MODELYARD_HTTP_PORT="8080",
            MODELYARD_GRPC_PORT="8081",
            MODELYARD_TERMINATION_LOG=str(self.setup.root / f"{name}.termination-log"),
            POD_NAME=name,
            POD_NAMESPACE=NAMESPACE,
            MODELYARD_INTRA_OP_THREADS="1",  # two cores run everything here
            MODELYARD_PROCESSES="1",
        )
        env.pop("MODELYARD_MODEL_SHA256", None)
        server = RuntimeProcess([], env=env)
        server.wait_ready()
        self.servers[name] = server
        self.addresses[name] = ip
        if pod["metadata"]["labels"].get(TRACK_LABEL) == "canary":
            self.canary = name

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        for server in self.servers.values():
            server.terminate()
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.wait(30)
            server.kill()
        self.servers.clear()


class LiveSetup:
    """``up()`` starts everything, ``down()`` stops what it started, by process id."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.targets = root / "operator-targets.json"
        self.cluster = LocalCluster(
            root / "cluster",
            tier="C",
            prometheus=True,
            scrape_configs=(operator_scrape_config(self.targets),),
            rule_files=(ROOT / alerts.RULES_FILE,),
            # Its own loopback range: other clusters on this machine serve 127.1.0.0/16 "pods".
            pod_cidr=f"127.{200 + os.getpid() % 50}.0.0/16",
        )
        self.operator: OperatorProcess | None = None
        self.pods: Pods | None = None

    @property
    def prometheus(self) -> str:
        return self.cluster.prometheus_url

    @property
    def addresses(self) -> dict[str, str]:
        return self.pods.addresses if self.pods else {}

    def up(self) -> None:
        pids = self.cluster.root / "pids"
        if not (pids.exists() and pids.read_text().strip()):  # nothing runs: start afresh
            shutil.rmtree(self.cluster.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.targets.write_text("[]")
        self.cluster.up()
        try:
            self._start_operator()
            self._roll_out()
            poll(self._all_scraped, timeout=120, what="every runtime pod and the operator up")
        except BaseException:
            self.down()
            raise

    def _start_operator(self) -> None:
        cluster = self.cluster
        install_manifests(cluster)
        config = cluster.service_account_kubeconfig(
            OPERATOR_NAMESPACE, "modelyard-operator", self.root / "operator.kubeconfig"
        )
        env = {"MODELYARD_OPERATOR_PROMETHEUS_URL": self.prometheus}
        self.operator = OperatorProcess(config, env=env)
        self.operator.start()
        target = {
            "targets": [f"127.0.0.1:{self.operator.metrics_port}"],
            "labels": {"namespace": OPERATOR_NAMESPACE, "pod": "modelyard-operator-local"},
        }
        staged = self.targets.with_suffix(".tmp")
        staged.write_text(json.dumps([target]))
        staged.replace(self.targets)  # atomic: file discovery never reads half a file

    def _apply(self, version: str, **runtime: Any) -> None:
        extra: dict[str, Any] = {"rollout": ROLLOUT}
        if runtime:
            extra["runtime"] = runtime
        manifest = md_manifest(NAME, uri=f"file:///models/iris-{version}.onnx", version=version,
                               replicas=2, extra_spec=extra)  # fmt: skip
        self.cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=json.dumps(manifest))

    def _status(self) -> dict[str, Any]:
        out = self.cluster.kubectl("-n", NAMESPACE, "get", "mdep", NAME, "-o", "json")
        return dict(json.loads(out.stdout).get("status") or {})

    def _roll_out(self) -> None:
        """v1 rolls out; a v2 canary is aborted; a v3 canary holds at its first step."""
        models = self.root / "models"
        models.mkdir(exist_ok=True)
        files = {v: onnx_models.tiny_model(models / f"iris-{v}.onnx", factor=f)
                 for v, f in FACTORS.items()}  # fmt: skip
        self.cluster.create_namespace(NAMESPACE)
        self.pods = Pods(self, files).start()
        self._apply("v1")
        poll(lambda: self._status().get("phase") == "Ready", timeout=120, what="v1 Ready")
        self._apply("v2")
        poll(lambda: bool(self._status().get("canary", {}).get("stepStartedAt")), timeout=120,
             what="the v2 canary at its step")  # fmt: skip
        # Prometheus has seen the rollout counters at 0, so the abort shows as an increase.
        zero = f'modelyard_rollouts_total{{namespace="{NAMESPACE}",result="aborted"}} == 0'
        poll(lambda: bool(query(self.prometheus, zero)), timeout=60,
             what="the rollout counters scraped at 0")  # fmt: skip
        self.cluster.kubectl("-n", NAMESPACE, "annotate", "mdep", NAME,
                             "serving.modelyard.io/action=abort")  # fmt: skip
        poll(lambda: (self._status().get("rolledBack") or {}).get("result") == "Aborted",
             timeout=120, what="the v2 canary aborted")  # fmt: skip
        self._apply("v3", batching=TIGHT)
        poll(lambda: bool(self._status().get("canary", {}).get("stepStartedAt")) and
             bool(self.pods and self.pods.canary), timeout=120,
             what="the v3 canary at its step, served")  # fmt: skip

    def _all_scraped(self) -> bool:
        up = query(self.prometheus, "up == 1")
        jobs = [sample["metric"].get("job") for sample in up]
        served = len(self.pods.servers) if self.pods else 0
        return jobs.count(alerts.RUNTIME_JOB) >= served > 0 and alerts.OPERATOR_JOB in jobs

    def down(self) -> None:
        if self.pods is not None:
            self.pods.stop()
            self.pods = None
        if self.operator is not None:
            self.operator.stop()
            self.operator = None
        self.cluster.down()


class Relabel:
    """Changes a label of the ModelDeployment every ``period`` seconds, in a background thread:
    each change is an update the operator reconciles, so its reconcile rate and latency have
    data (a steady ModelDeployment is reconciled only when it changes)."""

    def __init__(self, cluster: LocalCluster, *, period: float = 10.0) -> None:
        self.cluster = cluster
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relabel", daemon=True)

    def _run(self) -> None:
        for tick in itertools.count():
            self.cluster.kubectl(
                "-n", NAMESPACE, "label", "mdep", NAME, f"observe-tick={tick % 2}", "--overwrite",
                check=False,
            )  # fmt: skip
            if self._stop.wait(self.period):
                return

    def start(self) -> Relabel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


@contextlib.contextmanager
def load(setup: LiveSetup) -> Iterator[Traffic]:
    """Client traffic and ModelDeployment changes while the block runs."""
    pods = setup.pods
    assert pods is not None, "the setup is not up"
    traffic = Traffic(pods, model=NAME).start()
    relabel = Relabel(setup.cluster).start()
    try:
        yield traffic
    finally:
        relabel.stop()
        traffic.stop()


@contextlib.contextmanager
def running(root: Path) -> Iterator[LiveSetup]:
    """The live setup, stopped on exit."""
    setup = LiveSetup(root)
    setup.up()
    try:
        yield setup
    finally:
        setup.down()


def main() -> int:
    """``python -m hack.grafana.live``: bring the setup up with traffic until interrupted."""
    root = ROOT / ".local" / "dashboards-live"
    with running(root) as setup, load(setup) as traffic:
        print(f"prometheus: {setup.prometheus}  (pid {os.getpid()}; Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(60)  # serving until interrupted
                print(traffic.counts, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The live setup the dashboards are proven on and drawn from.

A local cluster (tier C) with its real Prometheus; the operator, run as its ServiceAccount and
scraped as job ``modelyard-operator``; a ModelDeployment ``iris`` (v1, two replicas) whose kwok
pods are served by real ``modelyard-runtime`` processes on the pods' loopback IPs, with the env
the operator rendered into the pod; a canary pod (v2, track ``canary``) served the same way; and
client traffic (``hack.grafana.traffic``) with some 400s and 404s and the canary's 504s and
429s, while the ModelDeployment is relabelled now and then so the operator reconciles. The alert
rules are loaded into Prometheus.

Until the operator runs canary rollouts, the canary pod is made here: it carries the labels and
env the operator's canary would, but not ``app.kubernetes.io/managed-by``, so the operator leaves
it alone. Used by ``tests/integration/cluster/test_dashboards_live.py`` and by
``make dashboards-preview``; imports the test process wrappers as ``hack/bench_operator.py`` does.
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
from hack.testbed.operator import OperatorProcess
from hack.testbed.processes import RuntimeProcess

NAMESPACE: Final = "modelyard-observe"
NAME: Final = "iris"
OPERATOR_NAMESPACE: Final = "modelyard-system"
CANARY_POD: Final = "iris-canary-0"
NAME_LABEL: Final = "serving.modelyard.io/deployment"
TRACK_LABEL: Final = "serving.modelyard.io/track"
# The canary batches up to 2 requests, waits 25 ms for the second, and gives each request 20 ms:
# a pair is served at once, a single request times out (504), a burst overflows the queue (429).
CANARY_ENV: Final = {
    "MODELYARD_MAX_BATCH_SIZE": "2",
    "MODELYARD_MAX_QUEUE_DELAY_MS": "25",
    "MODELYARD_MAX_QUEUE_SIZE": "4",
    "MODELYARD_REQUEST_TIMEOUT_MS": "20",
}
# Values of the dashboards' variables that select this setup (multi-value form for two).
VARIABLES: Final = {
    "datasource": "prometheus",
    "namespace": NAMESPACE,
    "model": NAME,
    "modeldeployment": NAME,
    "version": "(v1|v2)",
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
        self.servers: dict[str, RuntimeProcess] = {}  # pod name -> its server
        self.addresses: dict[str, str] = {}  # pod name -> its IP

    @property
    def prometheus(self) -> str:
        return self.cluster.prometheus_url

    def up(self) -> None:
        pids = self.cluster.root / "pids"
        if not (pids.exists() and pids.read_text().strip()):  # nothing runs: start afresh
            shutil.rmtree(self.cluster.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.targets.write_text("[]")
        self.cluster.up()
        try:
            self._start_operator()
            self._serve_model()
            poll(self._all_scraped, timeout=120, what="every runtime pod and the operator up")
        except BaseException:
            self.down()
            raise

    def _start_operator(self) -> None:
        cluster, manifests = self.cluster, ROOT / "manifests"
        cluster.kubectl("apply", "-f", str(ROOT / "crds" / "modeldeployments.yaml"))
        cluster.kubectl("apply", "-f", str(manifests / "operator" / "namespace.yaml"))
        cluster.kubectl("apply", "-f", str(manifests / "rbac"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "crd/modeldeployments.serving.modelyard.io"
        )
        config = cluster.service_account_kubeconfig(
            OPERATOR_NAMESPACE, "modelyard-operator", self.root / "operator.kubeconfig"
        )
        self.operator = OperatorProcess(config)
        self.operator.start()
        target = {
            "targets": [f"127.0.0.1:{self.operator.metrics_port}"],
            "labels": {"namespace": OPERATOR_NAMESPACE, "pod": "modelyard-operator-local"},
        }
        staged = self.targets.with_suffix(".tmp")
        staged.write_text(json.dumps([target]))
        staged.replace(self.targets)  # atomic: file discovery never reads half a file

    def _serve_model(self) -> None:
        cluster = self.cluster
        models = self.root / "models"
        models.mkdir(exist_ok=True)
        stable_model = onnx_models.tiny_model(models / "iris-v1.onnx", factor=2.0)
        canary_model = onnx_models.tiny_model(models / "iris-v2.onnx", factor=3.0)
        cluster.create_namespace(NAMESPACE)
        manifest = md_manifest(NAME, uri="file:///models/iris.onnx", version="v1", replicas=2)
        cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=json.dumps(manifest))
        stable = self._pods_with_ips(f"{NAME_LABEL}={NAME},{TRACK_LABEL}=stable", count=2)
        for pod in stable:
            self._serve(pod, stable_model, {})
        cluster.kubectl(
            "-n", NAMESPACE, "apply", "-f", "-", input=json.dumps(canary_pod(stable[0]))
        )
        (canary,) = self._pods_with_ips(f"{NAME_LABEL}={NAME},{TRACK_LABEL}=canary", count=1)
        self._serve(canary, canary_model, CANARY_ENV)

    def _pods_with_ips(self, selector: str, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def ready() -> bool:
            out = self.cluster.kubectl("-n", NAMESPACE, "get", "pods", "-l", selector, "-o", "json")
            items = json.loads(out.stdout)["items"]
            found[:] = [p for p in items if (p.get("status") or {}).get("podIP")]
            return len(found) == count

        poll(ready, timeout=120, what=f"{count} pods {selector} with IPs")
        return sorted(found, key=lambda pod: str(pod["metadata"]["name"]))

    def _serve(self, pod: dict[str, Any], model: Path, overrides: dict[str, str]) -> None:
        """Run the pod's runtime container as a process on the pod's IP, with the pod's env."""
        name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
        (container,) = (c for c in pod["spec"]["containers"] if c["name"] == "runtime")
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        env.update(
            MODELYARD_MODEL_PATH=str(model),
            MODELYARD_HOST=ip,
            MODELYARD_HTTP_PORT="8080",
            MODELYARD_GRPC_PORT="8081",
            MODELYARD_TERMINATION_LOG=str(self.root / f"{name}.termination-log"),
            POD_NAME=name,
            POD_NAMESPACE=NAMESPACE,
            MODELYARD_INTRA_OP_THREADS="1",  # two cores run everything here
            **overrides,
        )
        env.pop("MODELYARD_MODEL_SHA256", None)
        server = RuntimeProcess([], env=env)
        self.servers[name] = server
        self.addresses[name] = ip
        server.wait_ready()

    def _all_scraped(self) -> bool:
        up = query(self.prometheus, "up == 1")
        jobs = [sample["metric"].get("job") for sample in up]
        return jobs.count(alerts.RUNTIME_JOB) == len(self.servers) and alerts.OPERATOR_JOB in jobs

    def down(self) -> None:
        for server in self.servers.values():
            server.terminate()
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.wait(30)
            server.kill()
        self.servers.clear()
        if self.operator is not None:
            self.operator.stop()
            self.operator = None
        self.cluster.down()


def canary_pod(stable: dict[str, Any]) -> dict[str, Any]:
    """A canary pod as the operator's canary Deployment would make it (labels and env), minus
    ``managed-by``: the operator must not count it until it runs canaries itself."""
    labels = {
        k: v
        for k, v in stable["metadata"]["labels"].items()
        if k != "app.kubernetes.io/managed-by" and k != "pod-template-hash"
    }
    labels |= {
        "serving.modelyard.io/track": "canary",
        "serving.modelyard.io/model-version": "v2",
        "serving.modelyard.io/revision": "canary0001",
    }
    (container,) = (c for c in stable["spec"]["containers"] if c["name"] == "runtime")
    env = [e for e in container.get("env", []) if "value" in e]
    replaced = {
        "MODELYARD_TRACK": "canary",
        "MODELYARD_MODEL_VERSION": "v2",
        "MODELYARD_REVISION": "canary0001",
    }
    env = [e for e in env if e["name"] not in replaced]
    env += [{"name": k, "value": v} for k, v in replaced.items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": CANARY_POD, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "runtime",
                    "image": container["image"],
                    "env": sorted(env, key=lambda e: str(e["name"])),
                }
            ]
        },
    }


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
    traffic = Traffic(setup.addresses, model=NAME, canary=CANARY_POD).start()
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

"""``make demo``: the main job on a local default, in one command, as a newcomer meets it.

Brings up the local cluster with a real node (tier D: the control plane, Prometheus, a kwok node
and a real kubelet with containerd) where plain pods run on the real node and kwok's fake node
takes only pods that tolerate its taint (``real_node_first``): a ModelDeployment written by hand
runs for real, and one whose model cannot be downloaded says so. It builds the runtime and
operator images, installs the operator with the Helm chart (``charts/modelyard``: CRD, RBAC,
the operator pod with leader election, the Grafana dashboards as ConfigMaps), builds a model in
code, applies a ModelDeployment for it, waits for Ready on real pods, then rolls out v2 as a
canary judged on Prometheus under steady load and promoted, shows a model that cannot be
downloaded reported as such, and prints where the dashboards' queries and alerts can be seen.

Where the machine cannot run a real node (not root, or ``make node-deps`` not run), it falls
back to tier C: the chart is installed but its operator runs as a local process with the
chart's ServiceAccount, pods are only marked Ready by kwok (they tolerate its taint
explicitly), v2 rolls out directly, and the demo runs the pod's own command line and env (read
back from the API) as local processes: the real fetch with its sha256 check, then the real
server. ``make demo-down`` stops everything by process id.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import yaml

from hack import demo_rollouts
from hack.cluster import images, node
from hack.cluster.base import NODE_IP, ROOT, free_port, wait_until
from hack.cluster.helm import CHART, Helm, local_values
from hack.cluster.localcluster import LocalCluster, fake_toleration
from hack.testbed import onnx_models

STATE = ROOT / ".local" / "cluster"
WORK = ROOT / ".local" / "demo"
NAME = "tiny"
NAMESPACE = "modelyard-demo"
SYSTEM = "modelyard-system"
RELEASE = "modelyard"
ALERTS = ROOT / "deploy" / "prometheus" / "modelyard-alerts.yaml"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def kubectl(cluster: LocalCluster, *args: str, input: str | None = None) -> str:
    return cluster.kubectl(*args, input=input).stdout


def start_background(name: str, argv: list[str], env: dict[str, str]) -> int:
    log = (STATE / "logs" / f"{name}.log").open("ab")
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    (STATE / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def stop_background(name: str) -> None:
    pidfile = STATE / f"{name}.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)  # waiting for a process we stopped to exit
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pidfile.unlink()


def status(cluster: LocalCluster) -> dict[str, Any]:
    found = json.loads(kubectl(cluster, "-n", NAMESPACE, "get", "mdep", NAME, "-o", "json"))
    return dict(found.get("status") or {})


def condition(found: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in found.get("conditions") or [] if c["type"] == type_), {})


def serves(cluster: LocalCluster, version: str, shown: list[str]) -> bool:
    """``version`` is the stable one and Ready; prints each new rollout state on the way."""
    found = status(cluster)
    canary = found.get("canary") or {}
    analysis = (canary.get("lastAnalysis") or {}).get("result", "")
    line = f"phase {found.get('phase', '-')}"
    if canary.get("version"):
        line += (f", canary {canary.get('version')} step {canary.get('step')}/"
                 f"{canary.get('steps')} weight {canary.get('weight')}%"
                 + (f", last analysis {analysis}" if analysis else ""))  # fmt: skip
    if not shown or shown[-1] != line:
        shown.append(line)
        print(f"   {line}", flush=True)
    ready = condition(found, "Ready").get("status") == "True"
    return bool(found.get("stable", {}).get("version") == version and ready)


def manifest(uri: str, sha256: str, version: str, *, real: bool) -> str:
    """The annotated example, pointed at the model built here. Nothing pins it to a node: on
    the real node because it takes plain pods. Small requests, so a canary pod fits beside."""
    doc = yaml.safe_load((ROOT / "manifests" / "examples" / "modeldeployment.yaml").read_text())
    doc["metadata"].update(name=NAME, namespace=NAMESPACE)
    doc["spec"]["model"].update(uri=uri, sha256=sha256, version=version)
    doc["spec"]["resources"] = {"requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"}}  # fmt: skip
    if real:  # seconds-long steps so the demo stays short; real ones are minutes
        doc["spec"]["rollout"] = {
            "steps": [{"weight": 50, "pause": "20s"}],
            "analysis": {
                "interval": "10s", "failureThreshold": 2, "minSampleCount": 20,
                "metrics": [{"name": "errors", "errorRate": {"max": 0.01}},
                            {"name": "p99", "latency": {"quantile": 0.99, "max": "1s"}}],
            },
        }  # fmt: skip
    else:  # no pods serve on kwok, so no metrics to judge a canary by
        doc["spec"]["rollout"] = {"strategy": "Immediate"}
        doc["spec"]["scheduling"] = {"tolerations": [fake_toleration()]}
    return json.dumps(doc)


def infer(base: str) -> None:
    """One inference on the demo model; prints the request and the answer."""
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    request = urllib.request.Request(
        f"{base}/v2/models/{NAME}/infer", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    print(f"$ POST {base}/v2/models/{NAME}/infer [1,2,3,4] -> {json.dumps(outputs['double'])}"
          f" (model version {answer.get('model_version')})")  # fmt: skip


class Traffic:
    """Requests to a Service, each on a new connection, so kube-proxy spreads them over every
    pod behind it, a canary's too. Counts the answers by model version, and the failures."""

    def __init__(self, url: str, *, clients: int = 2, rate: float = 10.0) -> None:
        self.url, self.interval = url, 1.0 / rate
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                            "data": [1, 2, 3, 4]}]}  # fmt: skip
        self.body = json.dumps(body).encode()
        self.versions: collections.Counter[str] = collections.Counter()
        self.failed = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def client(self) -> None:
        next_at = time.monotonic()
        while not self.stopped.is_set():
            request = urllib.request.Request(
                self.url, data=self.body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    version = str(json.loads(response.read()).get("model_version", ""))
                with self.lock:
                    self.versions[version] += 1
            except (OSError, ValueError):
                with self.lock:
                    self.failed += 1
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(15)


# -- the operator --------------------------------------------------------------------------
def install_chart(cluster: LocalCluster, values: dict[str, Any], *, wait: bool) -> None:
    helm = Helm(cluster.bin, cluster.admin_kubeconfig, STATE / "helm")
    say(f"helm upgrade --install {RELEASE} charts/modelyard -n {SYSTEM}   (values: "
        f"{STATE / 'helm' / 'demo.values.json'})")  # fmt: skip
    values_file = helm.values_file(values, "demo")
    # An earlier demo stopped in the middle of an upgrade leaves the release pending, and Helm
    # refuses the next one: go back to the last good revision first (or start over).
    found = helm("status", RELEASE, "-n", SYSTEM, "-o", "json", check=False)
    state = json.loads(found.stdout)["info"]["status"] if found.returncode == 0 else ""
    if state == "pending-install":
        helm("uninstall", RELEASE, "-n", SYSTEM, "--wait")
    elif state.startswith("pending"):
        helm("rollback", RELEASE, "-n", SYSTEM, "--wait")
    args = ["upgrade", "--install", RELEASE, str(CHART), "-n", SYSTEM, "-f", str(values_file)]
    if wait:
        args += ["--wait", "--timeout=5m"]
    print(helm(*args).stdout.strip())


def start_operator_pod(cluster: LocalCluster, prometheus: str) -> str:
    """Build both images, load them into the node, install the chart with them."""
    say("building Dockerfile.runtime and Dockerfile.operator with podman; loading them into "
        "the node")  # fmt: skip
    started = time.monotonic()
    real_node = node.RealNode(cluster, tainted=False)
    runtime = images.load("runtime", real_node, WORK)
    operator = images.load("operator", real_node, WORK)
    print(f"{runtime}, {operator} ready in {time.monotonic() - started:.0f} s")
    values = local_values(cluster.ports["apiserver"], operator, runtime, pin_to_real_node=False)
    values["config"] = {"prometheusUrl": prometheus}
    values["grafana"] = {"dashboards": {"enabled": True}}
    install_chart(cluster, values, wait=True)
    return runtime


def start_operator_process(cluster: LocalCluster) -> None:
    """No node can run the operator pod here: the chart's RBAC, its operator as a process."""
    install_chart(cluster, {"runtimeImage": {"repository": "localhost/modelyard-runtime",
                                             "tag": "0.1.0"}}, wait=False)  # fmt: skip
    kubectl(cluster, "-n", SYSTEM, "scale", "deployment/modelyard-operator", "--replicas=0")
    say(f"no real node to run its pod: modelyard-operator runs here as the chart's "
        f"ServiceAccount {SYSTEM}/modelyard-operator (the Deployment is scaled to 0)")  # fmt: skip
    sa_config = cluster.service_account_kubeconfig(
        SYSTEM, "modelyard-operator", STATE / "operator.kubeconfig"
    )
    stop_background("operator")
    pid = start_background(
        "operator", [sys.executable, "-m", "modelyard_operator"],
        {"KUBECONFIG": str(sa_config), "MODELYARD_OPERATOR_LOG_FORMAT": "text",
         "MODELYARD_OPERATOR_METRICS_PORT": "0", "MODELYARD_OPERATOR_HEALTH_PORT": str(free_port()),
         "MODELYARD_OPERATOR_DEFAULT_RUNTIME_IMAGE": "localhost/modelyard-runtime:0.1.0"},
    )  # fmt: skip
    print(f"operator pid {pid}, log {STATE / 'logs' / 'operator.log'}")


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def forward(listen: tuple[str, int], target: tuple[str, int]) -> None:
    """A TCP relay: pods reach the host on the node address, Prometheus listens on loopback."""

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(relay(reader, upstream_writer), relay(upstream_reader, writer))

    server = await asyncio.start_server(connected, *listen)
    async with server:
        await server.serve_forever()


def prometheus_for_pods(cluster: LocalCluster) -> str:
    """Prometheus as the operator pod reaches it (through ``forward``)."""
    port = free_port()
    stop_background("prometheus-forward")
    start_background(
        "prometheus-forward",
        [sys.executable, "-m", "hack.demo", "forward", f"{NODE_IP}:{port}",
         f"127.0.0.1:{cluster.ports['prometheus']}"], {},
    )  # fmt: skip
    return f"http://{NODE_IP}:{port}"


# -- the fallback without a real node -------------------------------------------------------
def run_pod_locally(cluster: LocalCluster) -> None:
    """Run the pod template's fetch and runtime commands, with its env, as local processes."""
    deployment = json.loads(kubectl(cluster, "-n", NAMESPACE, "get", "deploy", NAME, "-o", "json"))
    pod = deployment["spec"]["template"]["spec"]
    fetch_args = list(pod["initContainers"][0]["args"])
    out = WORK / "pod" / "model.onnx"
    fetch_args[fetch_args.index("--out") + 1] = str(out)
    print("$ modelyard-runtime " + " ".join(fetch_args))
    subprocess.run([sys.executable, "-m", "modelyard_runtime", *fetch_args], check=True)
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    env.update(
        MODELYARD_MODEL_PATH=str(out), MODELYARD_HOST="127.0.0.1",
        MODELYARD_HTTP_PORT=str(free_port()), MODELYARD_GRPC_PORT=str(free_port()),
        MODELYARD_TERMINATION_LOG=str(WORK / "pod" / "termination-log"),
        POD_NAME="local", POD_NAMESPACE=NAMESPACE,
    )  # fmt: skip
    shown = {k: v for k, v in sorted(env.items()) if k.startswith("MODELYARD_")}
    print("$ modelyard-runtime serve   # with the pod's env:", json.dumps(shown, indent=1))
    stop_background("demo-runtime")
    start_background("demo-runtime", [sys.executable, "-m", "modelyard_runtime", "serve"], env)
    base = f"http://127.0.0.1:{env['MODELYARD_HTTP_PORT']}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_until(ready, timeout=60, what="the runtime", log=STATE / "logs" / "demo-runtime.log")
    infer(base)


# -- the steps -----------------------------------------------------------------------------
def apply_version(cluster: LocalCluster, store: str, version: str, *, real: bool) -> None:
    model = onnx_models.tiny_model(WORK / f"{NAME}-{version}.onnx", 2.0 if version == "v1" else 3.0)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    uri = f"{store}/{model.name}" if real else f"file://{model}"
    canary = " (a canary, judged on Prometheus while requests flow)" if version != "v1" else ""
    say(f"applying ModelDeployment {NAME} {version}: {uri} sha256 {digest[:12]}…{canary}")
    kubectl(cluster, "apply", "-f", "-", input=manifest(uri, digest, version, real=real))
    if real and version != "v1":
        demo_rollouts.watch(cluster, NAMESPACE, NAME)
    wait_until(
        functools.partial(serves, cluster, version, []),
        timeout=420, what=f"{NAME} {version} Ready", log=None,
    )  # fmt: skip
    print(kubectl(cluster, "-n", NAMESPACE, "get", "mdep,deploy,pods,svc,pdb", "-o", "wide"))


def apply_slow_version(cluster: LocalCluster, store: str) -> None:
    """v3: a genuinely slower model (tens of ms a row), held to a p99 of 10 ms: rolled back,
    the stable restored first, and it stays rolled back until the spec changes."""
    model = onnx_models.slow_model(WORK / f"{NAME}-v3.onnx")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    say(f"applying ModelDeployment {NAME} v3: a slower model, held to a p99 of at most 10 ms")
    doc = json.loads(manifest(f"{store}/{model.name}", digest, "v3", real=True))
    doc["spec"]["rollout"]["analysis"].update(failureThreshold=1, metrics=[
        {"name": "p99", "latency": {"quantile": 0.99, "max": "10ms"}}])  # fmt: skip
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(doc))
    demo_rollouts.watch(cluster, NAMESPACE, NAME)
    found = status(cluster)
    rolled = found.get("rolledBack") or {}
    serving = found.get("stable", {}).get("version")
    print(f"v3 {rolled.get('result', '?')}: {rolled.get('reason', '?')}; {serving} still serves")


def roll_out(cluster: LocalCluster, store: str, *, real: bool) -> None:
    """v1, then (on the real node, under steady traffic) v2 as a canary, promoted, and a slower
    v3, rolled back; the history."""
    apply_version(cluster, store, "v1", real=real)
    if real:
        ip = kubectl(cluster, "-n", NAMESPACE, "get", "svc", NAME,
                     "-o", "jsonpath={.spec.clusterIP}").strip()  # fmt: skip
        say(f"traffic to Service {NAME} ({ip}:8080): 20 requests/s, spread over its pods")
        with Traffic(f"http://{ip}:8080/v2/models/{NAME}/infer") as traffic:
            apply_version(cluster, store, "v2", real=real)
            apply_slow_version(cluster, store)
        print(f"requests answered by version: {dict(traffic.versions)}, failed: {traffic.failed}")
    else:
        apply_version(cluster, store, "v2", real=real)
    say("the rollout history (newest first)")
    rows = "{range .status.history[*]}{.version} {.revision} {.result} {.reason}{'\\n'}{end}"
    print(kubectl(cluster, "-n", NAMESPACE, "get", "mdep", NAME, "-o", f"jsonpath={rows}"))


def show_a_broken_download(cluster: LocalCluster) -> None:
    """A ModelDeployment written by hand with a model nobody serves: on the real node its fetch
    fails, and the status says so (on kwok it would have been marked Ready)."""
    uri = f"http://{NODE_IP}:{free_port()}/no-such-model.onnx"
    say(f"a ModelDeployment written by hand whose model cannot be downloaded ({uri})")
    broken = {
        "apiVersion": "serving.modelyard.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "broken", "namespace": NAMESPACE},
        "spec": {"model": {"uri": uri}, "resources": {"requests": {"cpu": "50m"}}},
    }
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(broken))

    def reported() -> bool:
        found = json.loads(kubectl(cluster, "-n", NAMESPACE, "get", "mdep", "broken", "-o", "json"))
        return condition(found.get("status") or {}, "ModelVerified").get("status") == "False"

    wait_until(reported, timeout=180, what="the failed download reported", log=None)
    columns = "custom-columns=NAME:.metadata.name,PHASE:.status.phase,REASON:.status.conditions" \
              "[?(@.type=='ModelVerified')].reason,MESSAGE:.status.conditions" \
              "[?(@.type=='ModelVerified')].message"  # fmt: skip
    print(kubectl(cluster, "-n", NAMESPACE, "get", "mdep", "broken", "-o", columns))
    kubectl(cluster, "-n", NAMESPACE, "delete", "mdep", "broken", "--wait=false")


VARIABLES = ("namespace", "model", "modeldeployment", "version", "track")
INTERVALS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def fill_variables(expr: str) -> str:
    """A dashboard query as Prometheus runs it for "all" of every variable."""
    for variable in VARIABLES:
        expr = expr.replace(f'=~"${variable}"', '=~".*"').replace(f'="${variable}"', '=~".*"')
    for variable, value in INTERVALS.items():
        expr = expr.replace(variable, value)
    return expr


def prometheus_query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.loads(response.read())["data"]["result"])


def show_dashboard_queries(prometheus: str) -> None:
    """Every panel query of ``dashboards/*.json``, run against Prometheus now, with what it
    returns (the same series the dashboards draw)."""
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        panels = [p for p in board.get("panels", []) if p.get("targets")]
        print(f"  {board.get('title', path.stem)} ({path.relative_to(ROOT)}): {len(panels)} panels")
        for panel in panels:
            for target in panel["targets"]:
                expr = fill_variables(str(target.get("expr", "")))
                try:
                    result = prometheus_query(prometheus, expr)
                except (OSError, ValueError, KeyError) as e:
                    print(f"    {panel.get('title')}: query failed: {e}")
                    continue
                first = ""
                if result:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(result[0]["metric"].items()))
                    first = f", e.g. {{{labels}}} {result[0]['value'][1]}"
                print(f"    {panel.get('title')}: {len(result)} series{first}")


def where_to_look(cluster: LocalCluster, *, real: bool) -> None:
    say("where to look next")
    kubectl_bin = cluster.bin / "kubectl"
    print(f"export KUBECONFIG={cluster.admin_kubeconfig}")
    print(f"{kubectl_bin} -n {NAMESPACE} describe mdep {NAME}     # conditions, Events")
    print(f"{kubectl_bin} explain mdep.spec")
    print(f"{cluster.bin / 'helm'} -n {SYSTEM} status {RELEASE}    # the chart; docs/install.md")
    logs = (f"{kubectl_bin} -n {SYSTEM} logs deploy/modelyard-operator"
            if real else str(STATE / "logs" / "operator.log"))  # fmt: skip
    print(f"operator log: {logs}")
    prometheus = cluster.prometheus_url
    say(f"the dashboards' queries, run now against Prometheus at {prometheus} (it scrapes every "
        f"runtime pod; again: python -m hack.demo queries)")  # fmt: skip
    show_dashboard_queries(prometheus)
    rate = "sum by (version) (rate(modelyard_requests_total[1m]))"
    print(f"  any query: curl -sG {prometheus}/api/v1/query --data-urlencode 'query={rate}'")
    print(f"  the dashboards as Grafana loads them: {kubectl_bin} -n {SYSTEM} get configmap "
          f"-l grafana_dashboard=1   (import dashboards/*.json into any Grafana)")  # fmt: skip
    print(f"  alerts: curl -s {prometheus}/api/v1/alerts   (rules: {ALERTS.relative_to(ROOT)}; "
          f"as a PrometheusRule with the chart's prometheusRule.enabled)")  # fmt: skip
    print("stop everything: make demo-down")


def up() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    missing = node.missing_prerequisites() + images.missing_prerequisites()
    real = not missing
    if real:
        say("starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, "
            "Prometheus, a kwok node for fake capacity) and a real node (kubelet, containerd) "
            "where plain pods run")  # fmt: skip
    else:
        say(
            f"starting the local cluster on a kwok node only (no real node: missing "
            f"{', '.join(missing)}; `make node-deps` installs them as root)"
        )
    cluster = LocalCluster(STATE, tier="D" if real else "C", prometheus=True, real_node_first=True)
    started = time.monotonic()
    cluster.up()
    cluster.detach()  # the demo's cluster runs on after this process: make demo-down stops it
    print(f"cluster up in {time.monotonic() - started:.1f} s at {cluster.server}")
    # The cluster keeps its etcd data between runs; Helm installs crds/ only the first time, so
    # keep the CRD current the documented way (docs/install.md).
    say("kubectl apply --server-side -f crds/   and the operator's namespace (PodSecurity "
        "restricted)")  # fmt: skip
    for path in ("crds/modeldeployments.yaml", "manifests/operator/namespace.yaml"):
        print(kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f",
                      str(ROOT / path)).strip())  # fmt: skip
    kubectl(
        cluster, "wait", "--for=condition=Established", "crd/modeldeployments.serving.modelyard.io"
    )
    # An earlier demo applied manifests/ with kubectl: Helm takes over only what it owns.
    unowned = "app.kubernetes.io/name=modelyard-operator,!helm.sh/chart"
    kubectl(cluster, "delete", "clusterrole,clusterrolebinding", "-l", unowned,
            "--ignore-not-found")  # fmt: skip
    kubectl(cluster, "-n", SYSTEM, "delete", "deployment,serviceaccount,role,rolebinding,service",
            "-l", unowned, "--ignore-not-found")  # fmt: skip
    store = ""
    if real:
        start_operator_pod(cluster, prometheus_for_pods(cluster))
        port = free_port()
        stop_background("model-store")
        start_background("model-store", [sys.executable, "-m", "http.server", "--bind", NODE_IP,
                                         str(port), "--directory", str(WORK)], {})  # fmt: skip
        store = f"http://{NODE_IP}:{port}"
        print(f"model store (pods fetch from it): {store}")
    else:
        start_operator_process(cluster)
    # Start from an empty namespace. After the operator is up: it removes the finalizers.
    kubectl(cluster, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    namespace = {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE,
                     "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }  # fmt: skip
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(namespace))

    roll_out(cluster, store, real=real)
    if real:
        say("one inference, sent to a v2 pod's IP")
        ips = kubectl(cluster, "-n", NAMESPACE, "get", "pods", "-l",
                      f"app.kubernetes.io/instance={NAME},serving.modelyard.io/model-version=v2",
                      "-o", "jsonpath={.items[*].status.podIP}")  # fmt: skip
        infer(f"http://{ips.split()[0]}:8080")
        show_a_broken_download(cluster)
    else:
        say("running the pod's own fetch and serve commands locally (kwok pods run no containers)")
        run_pod_locally(cluster)
    where_to_look(cluster, real=real)


def down() -> None:
    stop_background("model-store")
    stop_background("demo-runtime")
    stop_background("operator")
    stop_background("prometheus-forward")
    subprocess.run(
        [sys.executable, "-m", "hack.cluster.localcluster", "down", "--dir", str(STATE)], check=True
    )


def address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "action", choices=("up", "down", "queries", "forward"), nargs="?", default="up"
    )
    parser.add_argument("addresses", nargs="*", help="forward: LISTEN TARGET (host:port)")
    args = parser.parse_args()
    if args.action == "forward":
        listen, target = (address(a) for a in args.addresses)
        asyncio.run(forward(listen, target))
    elif args.action == "queries":
        ports = json.loads((STATE / "ports.json").read_text())
        show_dashboard_queries(f"http://127.0.0.1:{ports['prometheus']}")
    elif args.action == "up":
        up()
    else:
        down()


if __name__ == "__main__":
    main()

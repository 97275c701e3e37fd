"""``make demo``: the main job on a local default, in one command.

Brings up the local cluster with a real node (tier D: the control plane, a kwok node, and a real
kubelet with containerd), installs the CRD, the operator's namespace and least-privilege RBAC,
builds the runtime and operator images and runs the operator in a pod as its ServiceAccount,
builds a model in code, applies a ModelDeployment for it, waits for Ready on real pods, then
rolls out v2, shows the history and sends a v2 pod one inference.

Where the machine cannot run a real node (not root, or ``make node-deps`` not run), it falls
back to tier C: the operator runs as a local process, pods are only marked Ready by kwok, and
the demo runs the pod's own command line and env (read back from the API) as local processes:
the real fetch with its sha256 check, then the real server. ``make demo-down`` stops
everything by process id.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import yaml

from hack.cluster import images, node
from hack.cluster.base import NODE_IP, ROOT, free_port, wait_until
from hack.cluster.localcluster import LocalCluster
from hack.testbed import onnx_models

STATE = ROOT / ".local" / "cluster"
WORK = ROOT / ".local" / "demo"
NAME = "tabular-mlp"
NAMESPACE = "modelyard-demo"


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


def condition(cluster: LocalCluster, type_: str) -> str:
    out = kubectl(
        cluster, "-n", NAMESPACE, "get", "mdep", NAME,
        "-o", f'jsonpath={{.status.conditions[?(@.type=="{type_}")].status}}',
    )  # fmt: skip
    return out.strip()


def serves(cluster: LocalCluster, version: str) -> bool:
    """``version`` is the stable one and the ModelDeployment is Ready."""
    stable = kubectl(
        cluster, "-n", NAMESPACE, "get", "mdep", NAME, "-o", "jsonpath={.status.stable.version}"
    )
    return stable.strip() == version and condition(cluster, "Ready") == "True"


def manifest(uri: str, sha256: str, version: str, *, real: bool) -> str:
    """The annotated example, pointed at the model built here (and at the real node)."""
    doc = yaml.safe_load((ROOT / "manifests" / "examples" / "modeldeployment.yaml").read_text())
    doc["metadata"]["namespace"] = NAMESPACE
    doc["spec"]["model"].update(uri=uri, sha256=sha256, version=version)
    if real:
        doc["spec"]["scheduling"] = {
            "nodeSelector": node.node_selector(),
            "tolerations": [node.toleration()],
        }
    return json.dumps(doc)


def infer(base: str) -> None:
    """One inference on the demo model; prints the request and the answer."""
    body = {"inputs": [{"name": "input", "shape": [1, 16], "datatype": "FP32",
                        "data": [0.1 * i for i in range(16)]}]}  # fmt: skip
    request = urllib.request.Request(
        f"{base}/v2/models/{NAME}/infer", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    print(f"$ POST {base}/v2/models/{NAME}/infer -> {json.dumps(answer['outputs'][0]['data'])}")


def start_operator_pod(cluster: LocalCluster) -> str:
    """Build both images, load them into the real node, run the shipped operator Deployment."""
    say(
        "building Dockerfile.runtime and Dockerfile.operator with podman; loading them into "
        "the node"
    )
    started = time.monotonic()
    real_node = node.RealNode(cluster)
    runtime = images.load("runtime", real_node, WORK)
    operator = images.load("operator", real_node, WORK)
    print(f"{runtime}, {operator} ready in {time.monotonic() - started:.0f} s")
    say(
        "starting modelyard-operator in a pod (manifests/operator/deployment.yaml), as its "
        "ServiceAccount"
    )
    deployment = node.operator_deployment(cluster.ports["apiserver"], operator, runtime)
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(deployment))
    print(kubectl(cluster, "-n", "modelyard-system", "rollout", "status",
                  "deployment/modelyard-operator", "--timeout=180s").strip())  # fmt: skip
    return runtime


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


def start_operator_process(cluster: LocalCluster) -> None:
    say("starting modelyard-operator as ServiceAccount modelyard-system/modelyard-operator")
    sa_config = cluster.service_account_kubeconfig(
        "modelyard-system", "modelyard-operator", STATE / "operator.kubeconfig"
    )
    stop_background("operator")
    pid = start_background(
        "operator", [sys.executable, "-m", "modelyard_operator"],
        {"KUBECONFIG": str(sa_config), "MODELYARD_OPERATOR_LOG_FORMAT": "text",
         "MODELYARD_OPERATOR_METRICS_PORT": "0", "MODELYARD_OPERATOR_HEALTH_PORT": str(free_port()),
         "MODELYARD_OPERATOR_DEFAULT_RUNTIME_IMAGE": "localhost/modelyard-runtime:0.1.0"},
    )  # fmt: skip
    print(f"operator pid {pid}, log {STATE / 'logs' / 'operator.log'}")


def up() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    missing = node.missing_prerequisites() + images.missing_prerequisites()
    real = not missing
    if real:
        say("starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, "
            "kwok) and a real node (kubelet, containerd)")  # fmt: skip
    else:
        say(
            f"starting the local cluster on a kwok node only (no real node: missing "
            f"{', '.join(missing)}; `make node-deps` installs them as root)"
        )
    cluster = LocalCluster(STATE, tier="D" if real else "C")
    started = time.monotonic()
    cluster.up()
    cluster.detach()  # the demo's cluster runs on after this process: make demo-down stops it
    print(f"cluster up in {time.monotonic() - started:.1f} s at {cluster.server}")
    say("installing the CRD, the operator namespace and its least-privilege RBAC")
    for path in (
        "crds/modeldeployments.yaml",
        "manifests/operator/namespace.yaml",
        "manifests/rbac",
    ):
        print(kubectl(cluster, "apply", "-f", str(ROOT / path)).strip())
    kubectl(
        cluster, "wait", "--for=condition=Established", "crd/modeldeployments.serving.modelyard.io"
    )
    namespace = {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE,
                     "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }  # fmt: skip

    store = ""
    if real:
        start_operator_pod(cluster)
        port = free_port()
        stop_background("model-store")
        start_background(
            "model-store",
            [
                sys.executable,
                "-m",
                "http.server",
                "--bind",
                NODE_IP,
                str(port),
                "--directory",
                str(WORK),
            ],
            {},
        )
        store = f"http://{NODE_IP}:{port}"
        print(f"model store (pods fetch from it): {store}")
    else:
        start_operator_process(cluster)
    # The cluster keeps its etcd data between runs: start from an empty namespace. After the
    # operator is up, because it removes the ModelDeployments' finalizers.
    kubectl(cluster, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(namespace))

    for version, sizes in (("v1", (16, 64, 3)), ("v2", (16, 128, 3))):
        model = onnx_models.mlp_model(WORK / f"{NAME}-{version}.onnx", sizes, seed=len(version))
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        uri = f"{store}/{model.name}" if real else f"file://{model}"
        say(f"applying ModelDeployment {NAME} {version}: {uri} sha256 {digest[:12]}…")
        kubectl(cluster, "apply", "-f", "-", input=manifest(uri, digest, version, real=real))
        wait_until(
            functools.partial(serves, cluster, version),
            timeout=300, what=f"{NAME} {version} Ready", log=STATE / "logs" / "operator.log",
        )  # fmt: skip
        print(kubectl(cluster, "-n", NAMESPACE, "get", "mdep,deploy,pods,svc,pdb", "-o", "wide"))

    say("the rollout history (newest first)")
    rows = "{range .status.history[*]}{.version} {.revision} {.result}{'\\n'}{end}"
    history = kubectl(cluster, "-n", NAMESPACE, "get", "mdep", NAME, "-o", f"jsonpath={rows}")
    print(history)
    if real:
        say("one inference, sent to a v2 pod's IP")
        ips = kubectl(cluster, "-n", NAMESPACE, "get", "pods", "-l",
                      f"app.kubernetes.io/instance={NAME},serving.modelyard.io/model-version=v2",
                      "-o", "jsonpath={.items[*].status.podIP}")  # fmt: skip
        infer(f"http://{ips.split()[0]}:8080")
    else:
        say("running the pod's own fetch and serve commands locally (kwok pods run no containers)")
        run_pod_locally(cluster)

    say("where to look next")
    print(f"export KUBECONFIG={cluster.admin_kubeconfig}")
    print(f"{cluster.bin / 'kubectl'} -n {NAMESPACE} describe mdep {NAME}")
    print(f"{cluster.bin / 'kubectl'} explain mdep.spec")
    logs = (f"{cluster.bin / 'kubectl'} -n modelyard-system logs deploy/modelyard-operator"
            if real else str(STATE / "logs" / "operator.log"))  # fmt: skip
    print(f"operator log: {logs}     stop everything: make demo-down")


def down() -> None:
    stop_background("model-store")
    stop_background("demo-runtime")
    stop_background("operator")
    subprocess.run(
        [sys.executable, "-m", "hack.cluster.localcluster", "down", "--dir", str(STATE)], check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("up", "down"), nargs="?", default="up")
    args = parser.parse_args()
    up() if args.action == "up" else down()


if __name__ == "__main__":
    main()

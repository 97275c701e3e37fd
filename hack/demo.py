"""``make demo``: the main job on a local default, in one command.

Brings up the local cluster (tier C: real control plane, kwok node), installs the CRD, the
operator's namespace and least-privilege RBAC, starts the operator as its ServiceAccount, builds a
model in code, applies a ModelDeployment for it, waits for Ready, then rolls out v2 and shows the
history. Pods on a kwok node do not run containers, so the demo also runs the pod's own command
line and env (read back from the API) as local processes: the real fetch with its sha256 check,
then the real server, and sends it one inference. ``make demo-down`` stops everything by pid.
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

from hack.cluster.localcluster import ROOT, LocalCluster, free_port, wait_until
from tests import factories

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


def manifest(uri: str, sha256: str, version: str) -> str:
    """The annotated example, pointed at the model built here."""
    doc = yaml.safe_load((ROOT / "manifests" / "examples" / "modeldeployment.yaml").read_text())
    doc["metadata"]["namespace"] = NAMESPACE
    doc["spec"]["model"].update(uri=uri, sha256=sha256, version=version)
    return json.dumps(doc)


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
    body = {"inputs": [{"name": "input", "shape": [1, 16], "datatype": "FP32",
                        "data": [0.1 * i for i in range(16)]}]}  # fmt: skip
    request = urllib.request.Request(
        f"{base}/v2/models/{NAME}/infer", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    print(f"$ POST {base}/v2/models/{NAME}/infer -> {json.dumps(answer['outputs'][0]['data'])}")


def up() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    say("starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
    cluster = LocalCluster(STATE, tier="C")
    started = time.monotonic()
    cluster.up()
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
    # The cluster keeps its etcd data between runs: start from an empty namespace. After the
    # operator is up, because it removes the ModelDeployments' finalizers.
    kubectl(cluster, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(namespace))

    for version, sizes in (("v1", (16, 64, 3)), ("v2", (16, 128, 3))):
        model = factories.mlp_model(WORK / f"{NAME}-{version}.onnx", sizes, seed=len(version))
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        say(f"applying ModelDeployment {NAME} {version}: file://{model} sha256 {digest[:12]}…")
        kubectl(cluster, "apply", "-f", "-", input=manifest(f"file://{model}", digest, version))
        wait_until(
            functools.partial(serves, cluster, version),
            timeout=120, what=f"{NAME} {version} Ready", log=STATE / "logs" / "operator.log",
        )  # fmt: skip
        print(kubectl(cluster, "-n", NAMESPACE, "get", "mdep,deploy,pods,svc,pdb"))

    say("the rollout history (newest first)")
    rows = "{range .status.history[*]}{.version} {.revision} {.result}{'\\n'}{end}"
    history = kubectl(cluster, "-n", NAMESPACE, "get", "mdep", NAME, "-o", f"jsonpath={rows}")
    print(history)
    say("running the pod's own fetch and serve commands locally (kwok pods run no containers)")
    run_pod_locally(cluster)

    say("where to look next")
    print(f"export KUBECONFIG={cluster.admin_kubeconfig}")
    print(f"{cluster.bin / 'kubectl'} -n {NAMESPACE} describe mdep {NAME}")
    print(f"{cluster.bin / 'kubectl'} explain mdep.spec")
    print(f"operator log: {STATE / 'logs' / 'operator.log'}     stop everything: make demo-down")


def down() -> None:
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

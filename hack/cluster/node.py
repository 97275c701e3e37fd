"""Tier D: a real node (kubelet + containerd + runc + a CNI bridge) joined to a ``LocalCluster``.

The kubelet is built from the same Kubernetes version as the control plane (``build.sh``);
containerd 1.6, runc and the CNI plugins are Debian's (``hack/cluster/node-deps.sh``). What it
takes to run on this machine's hybrid cgroup v1 layout, found by trying:

- ``failCgroupV1: false`` (1.35+ refuses cgroup v1 by default) and the ``cgroupfs`` driver
  (containerd 1.x has no ``RuntimeConfig`` call; 1.36 still falls back to the kubelet's setting);
- containerd's ``restrict_oom_score_adj``: runc may not lower ``oom_score_adj`` here, and the
  kubelet asks -998 for every sandbox;
- a node address that is not loopback (the kubelet refuses one): a portless bridge with
  ``NODE_IP``; pods live on the ``mdy0`` bridge in ``POD_SUBNET``, reached from the host directly;
- no registry: the sandbox image is a static ``pause`` built from ``pause.c`` and imported with
  ``ctr``, and every pod image is imported the same way (pods use ``imagePullPolicy: Never`` or
  ``IfNotPresent``).

The node is tainted ``modelyard.io/real-node=true:NoSchedule`` (unless ``tainted=False``: a
``LocalCluster`` with ``real_node_first``), so only pods that ask for it (a toleration and
``kubernetes.io/hostname: local-node-0``) run real containers; everything else stays on the
kwok node. One real node per machine (the bridge, the address and containerd's
image store are machine-wide); needs root. Containerd's images persist in the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, Protocol

import yaml

from hack.cluster import ociimage
from hack.cluster.base import NODE_IP, ClusterError, Components, free_port, healthy
from hack.cluster.pki import Pki

NODE_NAME = "local-node-0"
NODE_LINK = "mdy-node"
BRIDGE = "mdy0"
POD_SUBNET = "10.244.0.0/24"
TAINT_KEY = "modelyard.io/real-node"
PAUSE_IMAGE = "modelyard.local/pause:1"
CNI_BIN = Path("/usr/lib/cni")
TOOLS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "gcc")
HERE = Path(__file__).resolve().parent


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the real node (empty when it can)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    missing += [f"{CNI_BIN}/{p}" for p in ("bridge", "host-local", "loopback")
                if not (CNI_BIN / p).exists()]  # fmt: skip
    if os.geteuid() != 0:
        missing.append("root (the kubelet and containerd run as root)")
    return missing


def cache_dir() -> Path:
    return Path(os.environ.get("MODELYARD_CACHE", Path.home() / ".cache" / "modelyard")) / "node"


def toleration() -> dict[str, str]:
    """What a pod adds (with ``node_selector()``) to run on the real node."""
    return {"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


def node_selector() -> dict[str, str]:
    return {"kubernetes.io/hostname": NODE_NAME}


def operator_deployment(apiserver_port: int, image: str, runtime_image: str) -> dict[str, Any]:
    """The shipped operator Deployment (``manifests/operator/deployment.yaml``), pointed at local
    images and the real node. Pods reach the apiserver on the node address (there is no
    kube-proxy to route the ``kubernetes`` Service), so the in-cluster address is set in env."""
    manifest = HERE.parents[1] / "manifests" / "operator" / "deployment.yaml"
    deployment: dict[str, Any] = yaml.safe_load(manifest.read_text())
    pod = deployment["spec"]["template"]["spec"]
    pod.update(nodeSelector=node_selector(), tolerations=[toleration()])
    (container,) = pod["containers"]
    container.update(image=image, imagePullPolicy="Never")
    env = {e["name"]: e for e in container["env"]}
    env["MODELYARD_OPERATOR_DEFAULT_RUNTIME_IMAGE"]["value"] = runtime_image
    container["env"] = [*env.values(),
        {"name": "KUBERNETES_SERVICE_HOST", "value": NODE_IP},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(apiserver_port)},
    ]  # fmt: skip
    return deployment


class Cluster(Protocol):
    """What the node needs of the control plane it joins (``LocalCluster`` is one)."""

    @property
    def root(self) -> Path: ...
    @property
    def bin(self) -> Path: ...
    @property
    def pki(self) -> Pki: ...
    @property
    def components(self) -> Components: ...

    def component_kubeconfig(self, name: str) -> Path: ...
    def node_ready(self, name: str) -> bool: ...
    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...


class RealNode:
    """containerd and the kubelet, started through the cluster's components (so the cluster's
    ``down`` stops them by pid). One real node runs on a machine at a time: ``up`` waits for
    ``LOCK`` (held until this process exits or ``release``), so parallel test runs take turns."""

    def __init__(self, cluster: Cluster, *, tainted: bool = True) -> None:
        self.cluster = cluster
        self.tainted = tainted
        self.root = cluster.root / "node"
        self.store = cache_dir() / "containerd"  # the image store, kept between runs
        self.socket = self.root / "containerd.sock"
        self._process_lock: IO[str] | None = None

    @staticmethod
    def claim_file() -> Path:
        return cache_dir() / "real-node.claim"

    def acquire(self, timeout: float) -> None:
        """Claim the machine's one real node, waiting up to ``timeout`` seconds while another
        cluster's node runs. The claim (``cache_dir()/real-node.claim``: owner pid, whether it
        outlives its process, cluster dir) is read and written under a short ``flock``. A claim
        whose node has stopped is free; one whose owning process died while the node was only
        held for that process's lifetime (a test session killed hard) is reaped: its node's
        processes are stopped and the claim taken over."""
        deadline = time.monotonic() + timeout
        self._hold_process_lock(deadline)
        try:
            self._claim(deadline, timeout)
        except BaseException:
            self._drop_process_lock()
            raise

    def _claim(self, deadline: float, timeout: float) -> None:
        while True:
            with self._claims() as claims:
                owner = _read_claim(claims)
                if owner is None or owner.root == self.cluster.root or not owner.running():
                    _write_claim(claims, _Claim(os.getpid(), False, self.cluster.root))
                    return
                if not owner.detached and not _alive(owner.pid):
                    owner.reap()
                    _write_claim(claims, _Claim(os.getpid(), False, self.cluster.root))
                    return
            if time.monotonic() > deadline:
                how = "stop it (make demo-down or make cluster-down)" if owner.detached else (
                    "wait for its tests to end")  # fmt: skip
                raise ClusterError(
                    f"the real node of the local cluster in {owner.root} is running after "
                    f"{timeout:.0f} s: one real node runs on a machine; {how}"
                )
            time.sleep(2)  # waiting for another cluster's node to stop

    def _hold_process_lock(self, deadline: float) -> None:
        """Also hold ``real-node.lock`` while this process runs the node: a cluster started by
        an older checkout on this machine only knows that lock."""
        path = cache_dir() / "real-node.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.open("a+")
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._process_lock = lock
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise ClusterError(f"another local cluster holds {path}") from None
                time.sleep(2)  # waiting for another cluster's node to stop

    def detach(self) -> None:
        """The node outlives this process (``make cluster-up``, ``make demo``): its claim stays
        until ``down``."""
        with self._claims() as claims:
            owner = _read_claim(claims)
            if owner is not None and owner.root == self.cluster.root:
                _write_claim(claims, dataclasses.replace(owner, detached=True))

    def release(self) -> None:
        with self._claims() as claims:
            owner = _read_claim(claims)
            if owner is not None and owner.root == self.cluster.root:
                claims.seek(0)
                claims.truncate(0)
        self._drop_process_lock()

    def _drop_process_lock(self) -> None:
        if self._process_lock is not None:
            fcntl.flock(self._process_lock, fcntl.LOCK_UN)
            self._process_lock.close()
            self._process_lock = None

    @contextlib.contextmanager
    def _claims(self) -> Iterator[IO[str]]:
        path = self.claim_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+") as claims:
            fcntl.flock(claims, fcntl.LOCK_EX)
            try:
                yield claims
            finally:
                fcntl.flock(claims, fcntl.LOCK_UN)

    # -- containerd --------------------------------------------------------------------------
    def ctr(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        result = subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def import_image(self, archive: Path, reference: str) -> None:
        """Import an OCI archive of ``reference`` into the node's image store (the kubelet's
        "pull"). The id name of the build it replaces is dropped too, so old builds do not pile
        up in the cache (containerd collects content no name refers to)."""
        before = self._digests()
        self.ctr("images", "import", str(archive))
        old = before.get(reference)
        if old and old != self._digests().get(reference):
            # The id name the CRI gave the old build; other names of that content stay.
            stale = [ref for ref, digest in before.items()
                     if digest == old and ref.startswith("sha256:")]  # fmt: skip
            if stale:
                self.ctr("images", "remove", *stale, check=False)

    def _digests(self) -> dict[str, str]:
        """Image name -> manifest digest."""
        rows = self.ctr("images", "list").splitlines()[1:]
        return {row.split()[0]: row.split()[2] for row in rows if len(row.split()) > 2}

    def has_image(self, reference: str) -> bool:
        return reference in self._digests()

    def _containerd_config(self) -> Path:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        runc = f"{cri}.containerd.runtimes.runc"
        config = f"""version = 2
root = "{self.store}"
state = "{self.root / "containerd-state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.socket}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.root / "cni"}"
  [{cri}.containerd]
    default_runtime_name = "runc"
  [{runc}]
    runtime_type = "io.containerd.runc.v2"
  [{runc}.options]
    SystemdCgroup = false
"""
        path = self.root / "containerd.toml"
        path.write_text(config)
        return path

    def _cni_config(self) -> None:
        network = {
            "cniVersion": "1.0.0",
            "name": "modelyard",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                          "routes": [{"dst": "0.0.0.0/0"}],
                          "dataDir": str(self.root / "cni-ipam")}},
                {"type": "loopback"},
            ],
        }  # fmt: skip
        (self.root / "cni").mkdir(parents=True, exist_ok=True)
        (self.root / "cni" / "10-modelyard.conflist").write_text(json.dumps(network, indent=2))

    def _pause_image(self) -> None:
        if self.has_image(PAUSE_IMAGE):
            return
        binary = self.root / "pause"
        subprocess.run(
            ["gcc", "-static", "-Os", "-s", "-o", str(binary), str(HERE / "pause.c")], check=True
        )
        archive = self.root / "pause.tar"
        files = {"pause": (binary.read_bytes(), 0o755)}
        ociimage.write_archive(archive, PAUSE_IMAGE, files, entrypoint=["/pause"])
        self.import_image(archive, PAUSE_IMAGE)

    # -- network -----------------------------------------------------------------------------
    @staticmethod
    def _node_address() -> None:
        """A portless bridge holding NODE_IP (this kernel has no dummy module): the kubelet
        needs a node address off loopback."""
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
        if f": {NODE_LINK}:" not in links.stdout:
            subprocess.run(["ip", "link", "add", NODE_LINK, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "replace", f"{NODE_IP}/32", "dev", NODE_LINK], check=True)
        subprocess.run(["ip", "link", "set", NODE_LINK, "up"], check=True)

    # -- kubelet -----------------------------------------------------------------------------
    def _kubelet_config(self, port: int, healthz: int) -> Path:
        pki = self.cluster.pki
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP, "port": port, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": healthz,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(pki.ca)}},
            "authorization": {"mode": "AlwaysAllow"},
            "tlsCertFile": str(pki.cert("kubelet")), "tlsPrivateKeyFile": str(pki.key("kubelet")),
            "cgroupDriver": "cgroupfs", "failCgroupV1": False, "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
            if self.tainted else [],
            # A shared disk: never evict or collect images because of what others stored there.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "maxPods": 30, "serializeImagePulls": False, "resolvConf": "",
            "syncFrequency": "5s", "nodeStatusUpdateFrequency": "5s",
        }  # fmt: skip
        path = self.root / "kubelet.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    def up(self, timeout: float = 120.0, lock_timeout: float = 3600.0) -> None:
        missing = missing_prerequisites()
        if missing:
            raise ClusterError(
                "the real node needs: " + ", ".join(missing) + " (run hack/cluster/node-deps.sh)"
            )
        self.acquire(lock_timeout)
        self.root.mkdir(parents=True, exist_ok=True)
        self.store.mkdir(parents=True, exist_ok=True)
        self._node_address()
        self._cni_config()
        cluster = self.cluster
        components = cluster.components
        components.start(
            "containerd", ["--config", str(self._containerd_config())], executable="containerd"
        )
        components.wait_started(
            "containerd",
            lambda: self.socket.exists() and self.ctr("version", check=False) != "",
            timeout,
        )
        self._pause_image()
        kubeconfig = cluster.component_kubeconfig("kubelet")
        port, healthz = free_port(), free_port()
        components.start("kubelet", [
            f"--kubeconfig={kubeconfig}", f"--config={self._kubelet_config(port, healthz)}",
            f"--root-dir={self.root / 'kubelet'}", f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
        ])  # fmt: skip

        components.wait_started(
            "kubelet", lambda: cluster.node_ready(NODE_NAME), timeout, what="kubelet (real node)"
        )
        # A Node kept in etcd from an earlier run keeps its taints, and the cordon of that run's
        # ``drain``: set the taints as asked now, and let pods be scheduled again.
        taint = f"{TAINT_KEY}=true:NoSchedule" if self.tainted else f"{TAINT_KEY}-"
        cluster.kubectl("taint", "nodes", NODE_NAME, taint, "--overwrite", check=False)
        cluster.kubectl("uncordon", NODE_NAME)
        self._up_kube_proxy(timeout)

    def _up_kube_proxy(self, timeout: float) -> None:
        """Services' data path (iptables mode): a ClusterIP reaches the pods behind it, from the
        host and from pods (bridged traffic goes through iptables, ``br_netfilter``)."""
        Path("/proc/sys/net/bridge/bridge-nf-call-iptables").write_text("1")
        cluster = self.cluster
        healthz, metrics = free_port(), free_port()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(cluster.component_kubeconfig("kube-proxy"))},
            "mode": "iptables", "clusterCIDR": POD_SUBNET, "hostnameOverride": NODE_NAME,
            "healthzBindAddress": f"127.0.0.1:{healthz}",
            "metricsBindAddress": f"127.0.0.1:{metrics}",
            "nodePortAddresses": [f"{NODE_IP}/32"],  # never a NodePort on a shared address
            "conntrack": {"maxPerCore": 0, "min": 0},  # leave the machine's conntrack sysctls
            "iptables": {"localhostNodePorts": False, "syncPeriod": "5s"},
        }  # fmt: skip
        path = self.root / "kube-proxy.json"
        path.write_text(json.dumps(config, indent=2))
        cluster.components.start("kube-proxy", [f"--config={path}"])
        cluster.components.wait_started(
            "kube-proxy", healthy(f"http://127.0.0.1:{healthz}/healthz"), timeout
        )

    def drain(self, timeout: float = 60.0) -> None:
        """Cordon the node, delete its pods through the API and wait until containerd runs no
        task, so the kubelet tears down their networks and volumes before it stops."""
        self.cluster.kubectl("cordon", NODE_NAME, check=False)  # no replacement pods here
        self.cluster.kubectl(
            "delete", "pods", "--all-namespaces", f"--field-selector=spec.nodeName={NODE_NAME}",
            "--grace-period=1", "--wait=false", check=False,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.ctr("tasks", "list", "--quiet", check=False, timeout=10).split()
            if not tasks:
                return
            time.sleep(0.5)  # polling containerd for the kubelet's teardown

    def cleanup(self) -> None:
        """After containerd and the kubelet stopped: kill what is left, unmount, free the IPs."""
        if not self.root.exists():  # no real node ran here
            return
        for path in (self.root / "containerd-state").glob("io.containerd.runtime.v2.task/*/*"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((path / "init.pid").read_text()), 9)
        for proc in Path("/proc").glob("[0-9]*"):  # shims outlive containerd by design
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                if (
                    b"containerd-shim-runc-v2" in cmdline[0]
                    and str(self.socket).encode() in cmdline
                ):
                    os.kill(int(proc.name), 9)
        if (self.cluster.bin / "kube-proxy").exists():  # its iptables chains and rules
            subprocess.run([str(self.cluster.bin / "kube-proxy"), "--cleanup"],
                           capture_output=True, check=False)  # fmt: skip
        roots = (str(self.root), str(self.store))
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in reversed(mounts):
            if mount.startswith(roots):
                subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root / "cni-ipam", ignore_errors=True)
        remove_pod_netns()
        self.release()


def remove_pod_netns() -> None:
    """Network namespaces of pods whose teardown the kubelet did not finish (one created while
    it stopped): those holding a POD_SUBNET address and no process. The bridge is ours alone."""
    prefix = POD_SUBNET.rsplit(".", 1)[0] + "."
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in listing.splitlines() if line.startswith("cni-")):
        addresses = subprocess.run(["ip", "-n", name, "-o", "-4", "addr"],
                                   capture_output=True, text=True).stdout  # fmt: skip
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        if f"inet {prefix}" in addresses and not pids.stdout.strip():
            subprocess.run(["ip", "netns", "delete", name], check=False)


@dataclasses.dataclass(frozen=True)
class _Claim:
    """Who has the real node: the process, whether the node outlives it, the cluster's dir."""

    pid: int
    detached: bool
    root: Path

    def node_pids(self) -> list[int]:
        pids = self.root / "pids"
        if not pids.exists():
            return []
        return [int(line.split()[0]) for line in pids.read_text().splitlines()
                if line.split()[1:2] and line.split()[1] in NODE_COMPONENTS]  # fmt: skip

    def running(self) -> bool:
        return any(_alive(pid) for pid in self.node_pids())

    def reap(self) -> None:
        """Stop the node of a cluster whose owner died (its session group, like ``down``)."""
        for pid in self.node_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


NODE_COMPONENTS: Final = frozenset({"containerd", "kubelet", "kube-proxy"})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_claim(claims: IO[str]) -> _Claim | None:
    claims.seek(0)
    fields = claims.read().split()
    if len(fields) != 3:
        return None
    return _Claim(int(fields[0]), fields[1] == "detached", Path(fields[2]))


def _write_claim(claims: IO[str], claim: _Claim) -> None:
    claims.seek(0)
    claims.truncate(0)
    mode = "detached" if claim.detached else "process"
    claims.write(f"{claim.pid} {mode} {claim.root}\n")
    claims.flush()

"""A real Kubernetes control plane on loopback, from the binaries ``hack/cluster/build.sh`` builds.

Tiers: ``A`` etcd + kube-apiserver (RBAC, PodSecurity, service-account tokens); ``B`` + the
controller-manager (GC, Deployments -> ReplicaSets -> Pods, namespaces, HPA); ``C`` + the scheduler
and kwok with a fake node advertising CPU, memory and ``nvidia.com/gpu``, so pods are scheduled
and marked Running/Ready. Every component listens on 127.0.0.1 only, on free ports, logs to
``<dir>/logs/<component>.log`` and is stopped by process id.

Used by the pytest fixtures (``tests/integration/cluster``) and by ``make cluster-up`` /
``make cluster-down``:

    python -m hack.cluster.localcluster up --dir .local/cluster --tier C --prometheus
    python -m hack.cluster.localcluster down --dir .local/cluster
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hack.cluster import pki as pki_module
from hack.cluster.base import (
    ROOT,
    ClusterError,
    Components,
    free_port,
    healthy,
    kubeconfig,
    wait_until,
)
from hack.cluster.node import POD_SUBNET, RealNode

BUILD = ROOT / "hack" / "cluster" / "build.sh"
BUILD_AUTOSCALING = ROOT / "hack" / "cluster" / "build-autoscaling.sh"
ADAPTER_RULES = ROOT / "deploy" / "prometheus-adapter" / "rules.yaml"  # the rules the chart ships
CUSTOM_METRICS_API = "v1beta2.custom.metrics.k8s.io"
EXTERNAL_METRICS_API = "v1beta1.external.metrics.k8s.io"
TIERS = ("A", "B", "C", "D")
SERVICE_CIDR = "10.0.0.0/16"  # bookkeeping only: nothing ever connects to these addresses
# kwok's fake pod IPs: on loopback, so a scrape of a "pod" never leaves this machine, and a test
# can run a real server on a pod's IP.
POD_CIDR = "127.1.0.0/16"
NODE_NAME = "kwok-node-0"
FAKE_TAINT = "kwok.x-k8s.io/node"  # NoSchedule on the kwok node with ``real_node_first``
# Addresses Prometheus may scrape: loopback and the real node's pod bridge (POD_SUBNET), nothing
# else (this machine may send traffic nowhere else).
SCRAPE_SAFE = r"127\..+|" + POD_SUBNET.rsplit(".", 1)[0].replace(".", r"\.") + r"\.[0-9]+:.+"


def bin_dir(*, prometheus: bool = False) -> Path:
    """Build (or reuse) the pinned binaries and return their directory."""
    extra = ["--with-prometheus"] if prometheus else []
    subprocess.run([str(BUILD), *extra], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([str(BUILD), "--print-bin"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


@dataclasses.dataclass
class LocalCluster:
    """Start with ``up()``, stop with ``down()``; ``kubectl()`` runs the pinned kubectl as admin."""

    root: Path
    tier: str = "C"
    prometheus: bool = False
    real_node_first: bool = False  # taint the kwok node instead of the real one (module doc)
    binaries: dataclasses.InitVar[Path | None] = None  # None: build (or reuse) the pinned ones
    bin: Path = dataclasses.field(init=False)
    ports: dict[str, int] = dataclasses.field(default_factory=dict)
    # More Prometheus scrape jobs, appended to the runtime pods' one (e.g. the operator's), and
    # rule files for it to evaluate.
    scrape_configs: Sequence[dict[str, object]] = ()
    rule_files: Sequence[Path] = ()
    # kwok's pod IPs; another loopback range keeps a test's "pods" apart from other clusters'.
    pod_cidr: str = POD_CIDR

    def __post_init__(self, binaries: Path | None) -> None:
        self.bin = binaries if binaries is not None else bin_dir(prometheus=self.prometheus)
        if self.tier not in TIERS:
            raise ClusterError(f"tier must be one of {', '.join(TIERS)}, not {self.tier!r}")
        self.components = Components(self.root, self.bin)
        self._node: RealNode | None = None
        self.logs = self.components.logs
        self.pids = self.components.pids
        self.admin_kubeconfig = self.root / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    # -- lifecycle -------------------------------------------------------------------------
    def up(self, timeout: float = 120.0, attempts: int = 3) -> None:
        """Start every component of the tier. Ports are picked free just before use, so another
        process on the machine may take one first: then everything is stopped and started again
        on new ports (up to ``attempts`` times)."""
        if self.pids.exists() and self.pids.read_text().strip():
            raise ClusterError(f"{self.pids} lists running components: run `down` first")
        for attempt in range(1, attempts + 1):
            try:
                self._up_once(timeout)
                return
            except ClusterError as e:
                if "address already in use" not in str(e) or attempt == attempts:
                    raise
                print(f"a port was taken meanwhile; starting again ({e})"[:300], file=sys.stderr)

    def _up_once(self, timeout: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pki = pki_module.create(self.root / "pki")
        components = (
            "etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok",
            "prometheus",
        )  # fmt: skip
        self.ports = {name: free_port() for name in components}
        (self.root / "ports.json").write_text(json.dumps(self.ports))
        try:
            self._up_etcd(timeout)
            self._up_apiserver(timeout)
            if self.tier in ("B", "C", "D"):
                self._up_controller_manager(timeout)
            if self.tier in ("C", "D"):
                self._up_scheduler(timeout)
                self._up_kwok(timeout)
            if self.tier == "D":
                self.start_node(timeout)
            if self.prometheus:
                self._up_prometheus(timeout)
        except BaseException:
            self.down()
            raise

    def _up_etcd(self, timeout: float) -> None:
        client, peer = self.ports["etcd"], self.ports["etcd-peer"]
        self.components.start("etcd", [
            "--name=local", f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=local=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync=true", "--auto-compaction-retention=1", "--log-level=warn",
            "--listen-metrics-urls=",
        ])  # fmt: skip
        self.components.wait_started("etcd", healthy(f"http://127.0.0.1:{client}/health"), timeout)

    def _up_apiserver(self, timeout: float) -> None:
        pki = self.pki
        self.components.start("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            # All addresses: a real node's pods reach it on the node address (node.NODE_IP).
            "--bind-address=0.0.0.0", "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}", f"--cert-dir={self.root / 'apiserver'}",
            f"--tls-cert-file={pki.cert('apiserver')}",
            f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
            "--allow-privileged=true", "--endpoint-reconciler-type=none",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={pki.ca}",
            f"--kubelet-client-certificate={pki.cert('admin')}",
            f"--kubelet-client-key={pki.key('admin')}",
            f"--requestheader-client-ca-file={pki.ca}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.cert('front-proxy')}",
            f"--proxy-client-key-file={pki.key('front-proxy')}",
        ])  # fmt: skip
        self.components.wait_started(
            "kube-apiserver", healthy(f"{self.server}/readyz", ca=self.pki.ca), max(timeout, 90)
        )
        self.admin_kubeconfig.write_text(
            kubeconfig(self.server, pki.ca, pki.cert("admin"), pki.key("admin"))
        )
        self.admin_kubeconfig.chmod(0o600)

    def component_kubeconfig(self, name: str) -> Path:
        """A kubeconfig for component ``name``, with its own client certificate."""
        path = self.root / f"{name}.kubeconfig"
        path.write_text(
            kubeconfig(self.server, self.pki.ca, self.pki.cert(name), self.pki.key(name))
        )
        return path

    def _up_controller_manager(self, timeout: float) -> None:
        config = self.component_kubeconfig("controller-manager")
        port = self.ports["controller-manager"]
        self.components.start("kube-controller-manager", [
            f"--kubeconfig={config}", f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}", "--bind-address=127.0.0.1",
            f"--secure-port={port}", f"--cert-dir={self.root / 'controller-manager'}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki.sa_key}",
            f"--root-ca-file={self.pki.ca}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle",
            # The default 20 requests/s makes 1,000 Deployments take minutes to get their pods.
            "--kube-api-qps=300", "--kube-api-burst=500",
        ])  # fmt: skip
        self.components.wait_started(
            "kube-controller-manager",
            healthy(f"https://127.0.0.1:{port}/healthz"),
            timeout,
        )

    def _up_scheduler(self, timeout: float) -> None:
        config = self.component_kubeconfig("scheduler")
        port = self.ports["scheduler"]
        self.components.start("kube-scheduler", [
            f"--kubeconfig={config}", f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.root / 'scheduler'}",
        ])  # fmt: skip
        self.components.wait_started(
            "kube-scheduler",
            healthy(f"https://127.0.0.1:{port}/healthz"),
            timeout,
        )

    def _up_kwok(self, timeout: float) -> None:
        config = self.component_kubeconfig("kwok")
        stages = self.bin.parent / "kwok-stages"
        port = self.ports["kwok"]
        self.components.start("kwok", [
            f"--kubeconfig={config}",
            *(f"--config={path}" for path in sorted(stages.glob("*.yaml"))),
            # Only annotated nodes: a test can add a node kwok leaves alone and play its kubelet.
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40",
            "--node-ip=127.0.0.1", f"--node-port={port}", f"--server-address=127.0.0.1:{port}",
            f"--cidr={self.pod_cidr}",
            f"--tls-cert-file={self.pki.cert('kwok')}",
            f"--tls-private-key-file={self.pki.key('kwok')}",
        ])  # fmt: skip
        node = fake_node(NODE_NAME, tainted=self.real_node_first)
        self.kubectl("apply", "-f", "-", input=json.dumps(node))

        self.components.wait_started(
            "kwok", lambda: self.node_ready(NODE_NAME), timeout, what="kwok node"
        )

    def node_ready(self, name: str) -> bool:
        out = self.kubectl(
            "get", "node", name, "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False,
        )  # fmt: skip
        return out.stdout.strip() == "True"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    def _up_prometheus(self, timeout: float) -> None:
        """Upstream Prometheus (Debian's lacks Kubernetes discovery), built by ``bin_dir``,
        discovering runtime pods through the API the way an install does."""
        self.kubectl("apply", "-f", "-", input=json.dumps(prometheus_rbac()))
        config = self.root / "prometheus.yml"
        settings = prometheus_config(self.server, self.pki, extra=self.scrape_configs)
        if self.rule_files:
            settings["rule_files"] = [str(path) for path in self.rule_files]
        config.write_text(json.dumps(settings, indent=2))
        self.components.start("prometheus", [
            f"--config.file={config}",
            f"--storage.tsdb.path={self.root / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            "--log.level=warn",
        ])  # fmt: skip
        self.components.wait_started(
            "prometheus", healthy(f"{self.prometheus_url}/-/ready"), timeout
        )

    def detach(self) -> None:
        """This process ends but the cluster runs on (``make cluster-up``, ``make demo``): a real
        node keeps its claim on the machine until ``down``."""
        if self._node is not None:
            self._node.detach()

    def stop_prometheus(self) -> None:
        """Stop Prometheus (a test of what happens while it is down); ``start_prometheus``
        brings it back on the same port with the same data."""
        self.components.stop("prometheus")

    def start_prometheus(self, timeout: float = 60.0) -> None:
        self._up_prometheus(timeout)

    # -- faults (tests/integration/cluster/test_faults.py, hack/bench_faults.py) -------------
    def restart_apiserver(self, timeout: float = 300.0, grace: float = 5.0) -> None:
        """Stop kube-apiserver (SIGTERM; SIGKILL if it still drains after ``grace`` seconds:
        every open watch and request ends) and start it again on the same port with the same
        certificates, as a control-plane upgrade or a crash does."""
        try:
            self.components.stop("kube-apiserver", timeout=grace)
        except subprocess.TimeoutExpired:
            self._kill_component("kube-apiserver")
        self._up_apiserver(timeout)

    def _kill_component(self, name: str) -> None:
        """SIGKILL component ``name`` (the one started last under that name), and reap it."""
        pid = None
        for line in self.pids.read_text().splitlines():
            number, component = line.split()
            if component == name:
                pid = int(number)
        for process in self.components.processes:
            if process.pid == pid:
                process.kill()
                process.wait(10)

    def stop_etcd(self) -> None:
        """Stop etcd: the apiserver stays up but cannot read past its cache or write
        anything until ``start_etcd``."""
        self.components.stop("etcd")

    def start_etcd(self, timeout: float = 60.0) -> None:
        """etcd again on the same ports and data directory (nothing is lost), and wait until
        the apiserver reaches it."""
        self._up_etcd(timeout)
        ready = healthy(f"{self.server}/readyz", ca=self.pki.ca)
        wait_until(ready, timeout=timeout, what="kube-apiserver back on etcd",
                   log=self.components.log("kube-apiserver"))  # fmt: skip

    def add_fake_node(
        self, name: str, *, labels: dict[str, str] | None = None, timeout: float = 60.0
    ) -> None:
        """Another kwok node (the capacity of ``fake_node``, plus ``labels``), Ready on return."""
        node = fake_node(name, tainted=self.real_node_first)
        metadata = node["metadata"]
        assert isinstance(metadata, dict)
        metadata["labels"] = {**metadata["labels"], **(labels or {})}
        self.kubectl("apply", "-f", "-", input=json.dumps(node))
        wait_until(lambda: self.node_ready(name), timeout=timeout, what=f"kwok node {name}",
                   log=self.components.log("kwok"))  # fmt: skip

    def remove_node(self, name: str) -> None:
        """Delete node ``name`` as a cloud does with a machine that is gone: nothing drains it;
        the controller-manager's pod GC deletes its pods (within about a minute) and their
        controllers create new ones elsewhere."""
        self.kubectl("delete", "node", name, "--wait=false")

    def start_node(self, timeout: float = 120.0) -> RealNode:
        """Join the real node (tier D: kubelet + containerd) to this running cluster."""
        self._node = RealNode(self, tainted=not self.real_node_first)
        self._node.up(timeout)
        return self._node

    def down(self) -> None:
        """Stop every component by process id: SIGTERM, then SIGKILL after 10 s. A real node's
        pods are deleted first, so the kubelet tears down their networks and mounts."""
        if not self.pids.exists():
            return
        node = self._node or RealNode(self)  # the one holding the machine's real-node lock
        if "kubelet" in self.pids.read_text():
            node.drain()
        entries = [line.split() for line in self.pids.read_text().splitlines() if line.strip()]
        for pid, _ in reversed(entries):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pid, _ in entries:
            while time.monotonic() < deadline:
                try:
                    os.kill(int(pid), 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)  # waiting for a process to exit
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid), signal.SIGKILL)
        for process in self.components.processes:  # reap the ones this object started
            process.wait(10)
        self.components.processes.clear()
        node.cleanup()
        self.pids.unlink()

    # -- clients ---------------------------------------------------------------------------
    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or self.admin_kubeconfig
        result = subprocess.run(
            [str(self.bin / "kubectl"), f"--kubeconfig={config}", *args],
            input=input, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def create_namespace(self, name: str, timeout: float = 60.0) -> None:
        """Create ``name`` and wait for its default ServiceAccount (pods are refused until then)."""
        self.kubectl("create", "namespace", name)
        if self.tier == "A":  # no controller-manager makes service accounts
            return
        wait_until(
            lambda: self.kubectl("-n", name, "get", "serviceaccount", "default", check=False)
            .returncode == 0,
            timeout=timeout, what=f"the default ServiceAccount of {name}", log=None,
        )  # fmt: skip

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` (TokenRequest)."""
        token = self.kubectl("-n", namespace, "create", "token", name, "--duration=2h").stdout
        path.write_text(kubeconfig(self.server, self.pki.ca, None, None, token=token.strip()))
        path.chmod(0o600)
        return path

    # -- autoscaling: the custom metrics API -------------------------------------------------
    @property
    def metrics_adapter_port(self) -> int:
        return self.ports["metrics-adapter"]

    def start_metrics_adapter(
        self, rules: Path = ADAPTER_RULES, *, relist: str = "5s", timeout: float = 120.0
    ) -> None:
        """Serve ``custom.metrics.k8s.io`` from this cluster's Prometheus with prometheus-adapter
        (built by ``build-autoscaling.sh``) and ``rules``, so the real HPA controller can read
        the runtime's metrics. A host process on loopback, reached by the aggregator through an
        ExternalName Service and an APIService that skips TLS verification (a test cluster
        only: the adapter serves a self-signed certificate). It acts as admin (a test cluster
        only; an install gives it its own ServiceAccount). ``relist``: how often it lists the
        series, i.e. how soon a new pod's metrics can be served."""
        if not self.prometheus:
            raise ClusterError("the metrics adapter reads Prometheus: start the cluster with it")
        adapter = subprocess.run([str(BUILD_AUTOSCALING)], check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1]  # fmt: skip
        self.ports["metrics-adapter"] = port = free_port()
        (self.root / "ports.json").write_text(json.dumps(self.ports))
        config = self.admin_kubeconfig
        self.components.start("prometheus-adapter", [
            f"--secure-port={port}", "--bind-address=127.0.0.1",
            f"--cert-dir={self.root / 'prometheus-adapter'}",
            f"--lister-kubeconfig={config}", f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}", f"--prometheus-url={self.prometheus_url}",
            f"--metrics-relist-interval={relist}", f"--config={rules}",
        ], executable=adapter)  # fmt: skip
        self.components.wait_started(
            "prometheus-adapter", healthy(f"https://127.0.0.1:{port}/healthz"), timeout
        )
        self.kubectl("apply", "-f", "-", input=json.dumps(custom_metrics_api(port)))
        self.components.wait_started(
            "prometheus-adapter", self._custom_metrics_available, timeout,
            what="APIService v1beta2.custom.metrics.k8s.io Available",
        )  # fmt: skip

    def _custom_metrics_available(self) -> bool:
        out = self.kubectl(
            "get", "apiservice", CUSTOM_METRICS_API, "-o",
            "jsonpath={.status.conditions[?(@.type=='Available')].status}", check=False,
        )  # fmt: skip
        return out.stdout.strip() == "True"

    def start_keda(self, timeout: float = 180.0) -> None:
        """KEDA's operator and metrics adapter (``build-autoscaling.sh --with-keda``) as host
        processes in namespace ``keda``: ScaledObjects become HPAs that read
        ``external.metrics.k8s.io`` from KEDA's adapter, which asks the operator over gRPC with
        the mTLS certificates the operator generates (its cert rotation writes them to Secret
        ``kedaorg-certs``, copied here to both processes' cert directory). Admin credentials and
        an unverified APIService: a test cluster only."""
        script = str(BUILD_AUTOSCALING)
        subprocess.run([script, "--with-keda"], check=True, capture_output=True)
        keda = Path(subprocess.run([script, "--print-keda-bin"], check=True, capture_output=True,
                                   text=True).stdout.strip())  # fmt: skip
        crds = subprocess.run([script, "--print-keda-crds"], check=True, capture_output=True,
                              text=True).stdout.strip()  # fmt: skip
        self.kubectl("apply", "--server-side", "-f", crds)
        self.kubectl("create", "namespace", "keda", check=False)
        certs = self.root / "keda-certs"
        certs.mkdir(exist_ok=True)
        names = ("keda-operator-metrics", "keda-probe", "keda-grpc", "keda-adapter",
                 "keda-adapter-metrics")  # fmt: skip
        for name in names:
            self.ports[name] = free_port()
        (self.root / "ports.json").write_text(json.dumps(self.ports))
        env = {"WATCH_NAMESPACE": "", "POD_NAMESPACE": "keda",
               "KEDA_CLUSTER_OBJECT_NAMESPACE": "keda"}  # fmt: skip
        operator = [
            f"--kubeconfig={self.admin_kubeconfig}", "--leader-elect=false",
            "--enable-cert-rotation=true", "--enable-webhook-patching=false",
            "--enable-apiservice-patching=false", f"--cert-dir={certs}",
            f"--metrics-bind-address=127.0.0.1:{self.ports['keda-operator-metrics']}",
            f"--health-probe-bind-address=127.0.0.1:{self.ports['keda-probe']}",
            f"--metrics-service-bind-address=127.0.0.1:{self.ports['keda-grpc']}",
        ]  # fmt: skip
        self.components.start("keda-operator", operator, executable=str(keda / "keda-operator"),
                              env=env)  # fmt: skip
        # The first start makes the certificates' Secret; copy it where both processes read.
        wait_until(lambda: self._keda_certs(certs), timeout=timeout, what="kedaorg-certs",
                   log=self.components.log("keda-operator"))  # fmt: skip
        if self.components.processes[-1].poll() is None:
            self.components.stop("keda-operator")
        self.components.start("keda-operator", operator, executable=str(keda / "keda-operator"),
                              env=env)  # fmt: skip
        self.components.wait_started(
            "keda-operator", healthy(f"http://127.0.0.1:{self.ports['keda-probe']}/readyz"),
            timeout,
        )  # fmt: skip
        port = self.ports["keda-adapter"]
        config = self.admin_kubeconfig
        self.components.start("keda-adapter", [
            f"--secure-port={port}", "--bind-address=127.0.0.1", f"--cert-dir={certs}",
            f"--tls-cert-file={certs / 'tls.crt'}", f"--tls-private-key-file={certs / 'tls.key'}",
            f"--lister-kubeconfig={config}", f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            f"--metrics-service-address=127.0.0.1:{self.ports['keda-grpc']}",
            "--metrics-service-grpc-authority=keda-operator.keda.svc.cluster.local",
            # Its own /metrics listens on every address at this port (8080 unless told), which
            # would take the runtime's port from every pod address on this host.
            f"--port={self.ports['keda-adapter-metrics']}",
        ], executable=str(keda / "keda-adapter"),
           env={"KUBECONFIG": str(config), **env})  # fmt: skip
        self.components.wait_started(
            "keda-adapter", healthy(f"https://127.0.0.1:{port}/healthz"), timeout
        )
        api = aggregated_api("external.metrics.k8s.io", "v1beta1", "keda-adapter", port)
        self.kubectl("apply", "-f", "-", input=json.dumps(api))
        self.components.wait_started(
            "keda-adapter", lambda: self._api_available(EXTERNAL_METRICS_API), timeout,
            what=f"APIService {EXTERNAL_METRICS_API} Available",
        )  # fmt: skip

    def _keda_certs(self, certs: Path) -> bool:
        out = self.kubectl("-n", "keda", "get", "secret", "kedaorg-certs", "-o", "json",
                           check=False)  # fmt: skip
        if out.returncode != 0:
            return False
        data = json.loads(out.stdout).get("data") or {}
        if not all(k in data for k in ("ca.crt", "tls.crt", "tls.key")):
            return False
        for key in ("ca.crt", "tls.crt", "tls.key"):
            (certs / key).write_bytes(base64.b64decode(data[key]))
        return True

    def _api_available(self, name: str) -> bool:
        out = self.kubectl(
            "get", "apiservice", name, "-o",
            "jsonpath={.status.conditions[?(@.type=='Available')].status}", check=False,
        )  # fmt: skip
        return out.stdout.strip() == "True"


def custom_metrics_api(port: int) -> dict[str, object]:
    """The aggregation wiring of a host-process adapter on ``port``: an ExternalName Service
    (localhost) and APIService ``v1beta2.custom.metrics.k8s.io`` (TLS unverified: test only)."""
    return aggregated_api("custom.metrics.k8s.io", "v1beta2", "prometheus-adapter", port)


def aggregated_api(group: str, version: str, service: str, port: int) -> dict[str, object]:
    """APIService ``version.group`` served by a host process on ``port``, through an
    ExternalName Service ``service`` (localhost) in kube-system (TLS unverified: test only)."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": service, "namespace": "kube-system"},
             "spec": {"type": "ExternalName", "externalName": "localhost",
                      "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}},
            {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
             "metadata": {"name": f"{version}.{group}"},
             "spec": {"group": group, "version": version,
                      "service": {"name": service, "namespace": "kube-system", "port": port},
                      "insecureSkipTLSVerify": True, "groupPriorityMinimum": 100,
                      "versionPriority": 100}},
        ],
    }  # fmt: skip


def fake_toleration() -> dict[str, str]:
    """What a pod adds to run on a tainted kwok node (``real_node_first``)."""
    return {"key": FAKE_TAINT, "operator": "Exists", "effect": "NoSchedule"}


def fake_node(name: str, *, tainted: bool = False) -> dict[str, object]:
    """A kwok node with CPU, memory and NVIDIA GPUs; untainted, ordinary pods land on it."""
    # One fake node stands in for a cluster's capacity (the operator benchmark runs 1,000+ pods).
    capacity = {"cpu": "2000", "memory": "16Ti", "pods": "5000", "nvidia.com/gpu": "8"}
    taints = [{"key": FAKE_TAINT, "value": "fake", "effect": "NoSchedule"}] if tainted else []
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "kubernetes.io/hostname": name, "type": "kwok"},
        },
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": capacity, "phase": "Running"},
    }  # fmt: skip


def prometheus_rbac() -> dict[str, object]:
    """Read-only discovery rights for Prometheus's own identity (CN=prometheus)."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "prometheus-discovery"},
             "rules": [{"apiGroups": [""], "resources": ["pods", "services", "endpoints"],
                        "verbs": ["get", "list", "watch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "prometheus-discovery"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "prometheus-discovery"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                           "name": "prometheus"}]},
        ],
    }  # fmt: skip


def prometheus_config(
    server: str, pki: pki_module.Pki, extra: Sequence[dict[str, object]] = ()
) -> dict[str, object]:
    """Scrape runtime pods found by label, on the runtime's HTTP port or the port their
    ``prometheus.io/port`` annotation names; loopback and pod-bridge targets only. ``extra``
    scrape configs follow that job."""
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.cert("prometheus")),
           "key_file": str(pki.key("prometheus"))}  # fmt: skip
    label = "__meta_kubernetes_pod_label_"
    return {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "scrape_configs": [{
            "job_name": "modelyard-runtime",
            "kubernetes_sd_configs": [{"role": "pod", "api_server": server, "tls_config": tls}],
            "relabel_configs": [
                {"source_labels": [label + "app_kubernetes_io_name"], "regex": "modelyard-runtime",
                 "action": "keep"},
                {"source_labels": ["__meta_kubernetes_pod_ip"], "regex": "(.+)",
                 "target_label": "__address__", "replacement": "${1}:8080"},
                # A pod whose metrics have a port of their own (NetworkPolicy on) says which.
                {"source_labels": ["__meta_kubernetes_pod_ip",
                                   "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                 "regex": "(.+);([0-9]+)", "target_label": "__address__",
                 "replacement": "${1}:${2}"},
                # Safety: only loopback (kwok's pods) and the real node's own pod bridge.
                {"source_labels": ["__address__"], "regex": SCRAPE_SAFE, "action": "keep"},
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ],
        }, *extra],
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start or stop the local Kubernetes cluster.")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, default=ROOT / ".local" / "cluster")
    parser.add_argument("--tier", choices=TIERS, default="C")
    parser.add_argument("--prometheus", action="store_true", help="also start Prometheus")
    args = parser.parse_args(argv)
    root = args.dir.resolve()
    if args.action == "down":
        print_bin = subprocess.run([str(BUILD), "--print-bin"], capture_output=True, text=True)
        LocalCluster(root, binaries=Path(print_bin.stdout.strip())).down()
        print(f"stopped the cluster in {root}")
        return 0
    started = time.monotonic()
    # A cluster with a real node from the start is one a person tries things on: plain pods run
    # for real there, and the kwok node takes only pods that tolerate its taint.
    cluster = LocalCluster(
        root, tier=args.tier, prometheus=args.prometheus, real_node_first=args.tier == "D"
    )
    try:
        cluster.up()
    except ClusterError as e:
        print(f"cluster-up failed: {e}", file=sys.stderr)
        return 1
    cluster.detach()
    print(
        f"cluster (tier {args.tier}) up in {time.monotonic() - started:.1f} s at {cluster.server}"
    )
    print(f"export KUBECONFIG={cluster.admin_kubeconfig}")
    print(f"kubectl: {cluster.bin / 'kubectl'}   logs: {cluster.logs}   stop: make cluster-down")
    if args.prometheus:
        print(f"prometheus: {cluster.prometheus_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

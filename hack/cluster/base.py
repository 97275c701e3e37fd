"""The bottom of the local cluster: errors, ports, polling, kubeconfigs and component processes.

``localcluster`` (the control plane), ``node`` (the real kubelet node) and ``pki`` build on this
module; it imports none of them. ``Components`` starts each component from the built binaries,
logs it to ``<dir>/logs/<name>.log`` and records its process id in ``<dir>/pids``, so everything
can be stopped by pid.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE_IP = "10.245.0.1"  # the real node's address (tier D); pods reach the host and apiserver here


class ClusterError(RuntimeError):
    """A component failed to start or to become ready; the message names it and its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log: Path | None,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``check`` until it passes; fail at once if ``process`` exits, else after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.25)  # polling a starting server process
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    state = (
        f"exited with {process.returncode}"
        if process and process.returncode is not None
        else (f"not ready after {timeout:.0f} s")
    )
    raise ClusterError(f"{what} {state}; log {log}:\n{tail}")


def healthy(url: str, *, ca: Path | None = None) -> Callable[[], bool]:
    """A check that ``url`` answers 200 (TLS verified against ``ca`` when given)."""
    context = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return check


def kubeconfig(server: str, ca: Path, cert: Path | None, key: Path | None, token: str = "") -> str:
    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    user: dict[str, str] = {"token": token} if token else {}
    if cert and key:
        user = {"client-certificate-data": data(cert), "client-key-data": data(key)}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server,
                                                   "certificate-authority-data": data(ca)}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
        "current-context": "local",
    }  # fmt: skip
    return json.dumps(config, indent=2)


class Components:
    """The processes of one cluster directory: started here, listed in ``pids``, logged in
    ``logs/``; stopping them is the cluster's job (``LocalCluster.down``)."""

    def __init__(self, root: Path, binaries: Path) -> None:
        self.root = root
        self.bin = binaries
        self.logs = root / "logs"
        self.pids = root / "pids"
        self.processes: list[subprocess.Popen[bytes]] = []  # started by this object

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(
        self,
        name: str,
        args: Sequence[str],
        executable: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start ``name`` from the built binaries (or ``executable`` from PATH), with ``env``
        added to this process's environment."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("ab") as log:
            process = subprocess.Popen(
                [executable or str(self.bin / name), *args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, **env} if env else None,
            )  # fmt: skip
        self.processes.append(process)
        with self.pids.open("a") as pids:
            pids.write(f"{process.pid} {name}\n")

    def stop(self, name: str, timeout: float = 30.0) -> None:
        """SIGTERM the running component ``name`` (the one started last under that name) and
        wait for it to exit; its line in ``pids`` stays (stopping it again is harmless)."""
        pid = None
        for line in self.pids.read_text().splitlines():
            number, component = line.split()
            if component == name:
                pid = int(number)
        if pid is None:
            raise ClusterError(f"no component {name} was started here")
        for process in self.processes:
            if process.pid == pid:
                process.terminate()
                process.wait(timeout)
                return
        raise ClusterError(f"component {name} (pid {pid}) was not started by this process")

    def wait_started(
        self, name: str, ready: Callable[[], bool], timeout: float, what: str | None = None
    ) -> None:
        """Wait for ``name``, the component started last, until ``ready``; on failure the error
        carries its log and whether it exited."""
        wait_until(
            ready, timeout=timeout, what=what or name, log=self.log(name),
            process=self.processes[-1],
        )  # fmt: skip

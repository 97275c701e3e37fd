"""``kubectl modelyard rollout status --watch`` in the demo, as a user runs it: the plugin found
on PATH next to this Python (where ``pip install`` put ``kubectl-modelyard``), the demo's
kubeconfig, until the rollout settles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hack.cluster.localcluster import LocalCluster


def watch(cluster: LocalCluster, namespace: str, name: str, timeout: int = 600) -> None:
    env = {**os.environ, "KUBECONFIG": str(cluster.admin_kubeconfig)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    print(f"$ kubectl modelyard rollout status {name} -n {namespace} --watch", flush=True)
    subprocess.run(
        [str(cluster.bin / "kubectl"), "modelyard", "rollout", "status", name, "-n", namespace,
         "--watch", "--timeout", str(timeout)],
        env=env, check=True, timeout=timeout + 60,
    )  # fmt: skip

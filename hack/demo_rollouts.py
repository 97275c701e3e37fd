"""The canary part of ``make demo``: a healthy v2 promoted and a slower v3 rolled back, on real
pods, judged on Prometheus, under steady load, with ``kubectl modelyard rollout status --watch``
on screen.

Called by ``hack.demo`` once v1 serves; needs the real node, Prometheus and an operator that
queries it. Short steps and a 10 s analysis interval keep the demo to a few minutes (the
defaults are a minute a step and a 30 s interval).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hack.cluster.localcluster import LocalCluster
from hack.testbed import onnx_models
from hack.testbed.load import SteadyLoad

STEPS = [{"weight": 34, "pause": "20s"}, {"weight": 67, "pause": "20s"}]


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


@dataclasses.dataclass
class Canaries:
    cluster: LocalCluster
    namespace: str
    name: str
    manifest: Callable[[str, str, str], dict[str, Any]]  # (uri, sha256, version) -> manifest
    store: Path  # where the model files go
    store_url: str  # how pods fetch them

    def apply(self, model: Path, version: str, analysis: dict[str, Any]) -> None:
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        doc = self.manifest(f"{self.store_url}/{model.name}", digest, version)
        doc["spec"]["rollout"] = {"steps": STEPS, "analysis": {"interval": "10s", **analysis}}
        doc["spec"].setdefault("runtime", {})["maxConnectionAge"] = "5s"
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))

    def watch(self) -> None:
        """``kubectl modelyard rollout status --watch``, as a user runs it, until it settles."""
        env = {**os.environ, "KUBECONFIG": str(self.cluster.admin_kubeconfig)}
        kubectl_dir = str(Path(sys.executable).parent)  # where kubectl-modelyard is installed
        env["PATH"] = f"{kubectl_dir}{os.pathsep}{env.get('PATH', '')}"
        command = [str(self.cluster.bin / "kubectl"), "modelyard", "rollout", "status",
                   self.name, "-n", self.namespace, "--watch", "--timeout", "600"]  # fmt: skip
        print("$ kubectl modelyard rollout status", self.name, "-n", self.namespace, "--watch")
        subprocess.run(command, env=env, check=True, timeout=900)

    def status(self) -> dict[str, Any]:
        out = self.cluster.kubectl("-n", self.namespace, "get", "mdep", self.name, "-o", "json")
        return dict(json.loads(out.stdout).get("status") or {})


def show(canaries: Canaries, load: SteadyLoad) -> None:
    """v2 promoted, then v3 rolled back; failed requests reported."""
    v2 = onnx_models.mlp_model(canaries.store / f"{canaries.name}-v2.onnx", (16, 128, 3), seed=2)
    say("v2 as a canary: 34% then 67% of the traffic, judged on its error rate and p99 against "
        "v1's (the default checks)")  # fmt: skip
    canaries.apply(v2, "v2", {"minSampleCount": 20})
    canaries.watch()
    say(f"history: {[(h['version'], h['result']) for h in canaries.status()['history'][:3]]}")

    v3 = onnx_models.slow_model(canaries.store / f"{canaries.name}-v3.onnx", features=16,
                                outputs=3, input_name="input", output_name="output")  # fmt: skip
    say("v3: a genuinely slower model, held to a p99 of at most 10 ms")
    canaries.apply(v3, "v3", {"failureThreshold": 1, "minSampleCount": 10, "metrics": [
        {"name": "latency-p99", "latency": {"quantile": 0.99, "max": "10ms"}}]})  # fmt: skip
    canaries.watch()
    rolled = canaries.status().get("rolledBack") or {}
    say(
        f"v3 {rolled.get('result', '?')}: {rolled.get('reason', '?')}; v2 still serves, and v3 "
        "stays rolled back until the spec changes (or `kubectl modelyard rollout retry`)"
    )
    failures = load.failures()
    print(f"steady load through the Service: {len(load.snapshot())} requests, "
          f"{len(failures)} failed", flush=True)  # fmt: skip

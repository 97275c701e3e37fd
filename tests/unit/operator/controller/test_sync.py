"""The controller end to end, fast: a ``FakeKube`` cluster, plain-dict indexes, a fixed clock and
a fake metrics source. ``Cluster.settle`` plays the Deployment controller and the kubelet (each
Deployment's pods are created and become ready), so a whole canary runs in milliseconds."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

import pytest

from hack.testbed.manifests import md_manifest
from modelyard_operator.analysis.source import MetricsUnavailableError
from modelyard_operator.config import OperatorConfig
from modelyard_operator.controller.sync import Controller
from modelyard_operator.controller.view import View, trim, trim_deployment, trim_pod
from modelyard_operator.k8s.errors import K8sNotFoundError
from modelyard_operator.k8s.fake import FakeKube
from modelyard_runtime.contract.names import ACTION_ANNOTATION, DEPLOYMENT_LABEL
from tests.unit.operator.builders import T0

KEY = ("ns", "m")
STEPS = {"steps": [{"weight": 50, "pause": "10s"}],
         "analysis": {"interval": "5s", "failureThreshold": 1, "minSampleCount": 10}}  # fmt: skip


class Source:
    """Every latency query answers ``latency`` seconds; counts and error rates are healthy."""

    def __init__(self) -> None:
        self.latency: dict[str, float] = {"canary": 0.01, "stable": 0.01}
        self.down = False

    async def query(self, promql: str) -> list[float]:
        if self.down:
            raise MetricsUnavailableError("Prometheus unreachable: connection refused")
        if "histogram_quantile" in promql:
            return [self.latency["canary" if 'track="canary"' in promql else "stable"]]
        if "increase" in promql:
            return [1000.0]
        return [0.0]


def ready_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    fetched = {"name": "fetch", "state": {"terminated": {"exitCode": 0}}}
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "initContainerStatuses": [fetched],
        },
    }


@dataclasses.dataclass
class Cluster:
    kube: FakeKube
    now: datetime.datetime = T0
    source: Source = dataclasses.field(default_factory=Source)
    controller: Controller = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.controller = self.new_controller()

    def new_controller(self) -> Controller:
        """An operator process: a restart gets a new one with nothing remembered."""
        config = OperatorConfig(default_runtime_image="img:1")
        return Controller(config=config, client=self.kube, view=self.view(), source=self.source,
                          clock=lambda: self.now)  # fmt: skip

    def view(self) -> View:
        mdeps: dict[tuple[str, str], list[dict[str, Any]]] = {}
        deployments: dict[tuple[str, str], list[dict[str, Any]]] = {}
        pods: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (kind, ns, name), obj in self.kube.objects.items():
            if kind == "ModelDeployment":
                mdeps[(ns, name)] = [trim(obj)]
            elif kind == "Deployment":
                owner = obj["metadata"]["labels"][DEPLOYMENT_LABEL]
                deployments.setdefault((ns, owner), []).append(trim_deployment(obj))
            elif kind == "Pod":
                owner = obj["metadata"]["labels"][DEPLOYMENT_LABEL]
                pods.setdefault((ns, owner), []).append(trim_pod(obj))
        return View(mdeps, deployments, pods)

    async def sync(self, *, on_spec: bool = False, resuming: bool = False) -> None:
        self.controller.view = self.view()
        if on_spec:
            body = self.kube.find("ModelDeployment", *KEY)
            assert body is not None
            await self.controller.on_spec(KEY, body, resuming=resuming)
        else:
            await self.controller.sync(KEY)

    def settle(self) -> None:
        """Every Deployment runs its template, all pods ready (the Deployment controller)."""
        for pod in self.kube.of_kind("Pod"):
            del self.kube.objects[("Pod", "ns", pod["metadata"]["name"])]
        for deployment in self.kube.of_kind("Deployment"):
            replicas = deployment["spec"].get("replicas", 1)
            deployment["status"] = {
                "observedGeneration": deployment["metadata"]["generation"], "replicas": replicas,
                "updatedReplicas": replicas, "availableReplicas": replicas,
                "readyReplicas": replicas,
            }  # fmt: skip
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            for index in range(replicas):
                self.kube.put(ready_pod(f"{deployment['metadata']['name']}-{index}", labels))

    def md(self) -> dict[str, Any]:
        found = self.kube.find("ModelDeployment", *KEY)
        assert found is not None
        return found

    def edit(self, **spec: Any) -> None:
        md = self.md()
        md["spec"] = {**md["spec"], **copy.deepcopy(spec)}
        md["metadata"]["generation"] += 1

    def tick(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)

    def writes(self, verb: str | None = None) -> list[tuple[str, str, str]]:
        return [(w.verb, w.kind, w.name) for w in self.kube.writes
                if w.kind != "Event" and (verb is None or w.verb == verb)]  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        return self.kube.of_kind("Event")


@pytest.fixture
def cluster() -> Cluster:
    kube = FakeKube()
    manifest = md_manifest("m", replicas=2, extra_spec={"rollout": STEPS})
    manifest["metadata"].update(namespace="ns", uid="u1", generation=1)
    kube.put(manifest)
    return Cluster(kube)


async def ready_v1(cluster: Cluster) -> None:
    await cluster.sync(on_spec=True)
    cluster.settle()
    await cluster.sync()
    assert cluster.md()["status"]["phase"] == "Ready"


async def test_a_new_object_gets_its_children_status_and_events(cluster: Cluster) -> None:
    await cluster.sync(on_spec=True)
    applied = cluster.writes("apply")
    assert applied == [("apply", "Service", "m"), ("apply", "PodDisruptionBudget", "m"),
                       ("apply", "Deployment", "m")]  # fmt: skip
    assert cluster.md()["status"]["phase"] == "Pending"  # the watch has not shown it yet
    cluster.settle()
    await cluster.sync()
    status = cluster.md()["status"]
    assert (status["phase"], status["stable"]["version"], status["readyReplicas"]) == (
        "Ready",
        "v1",
        2,
    )
    reasons = {(e["reason"], e["source"]["component"]) for e in cluster.events()}
    assert ("Available", "modelyard-operator") in reasons


async def test_nothing_is_written_when_nothing_changed_nor_after_a_restart(
    cluster: Cluster,
) -> None:
    await ready_v1(cluster)
    before = len(cluster.kube.writes)
    await cluster.sync()
    await cluster.sync()
    cluster.controller = cluster.new_controller()  # a restart: nothing remembered
    await cluster.sync(on_spec=True, resuming=True)
    await cluster.sync()
    assert cluster.kube.writes[before:] == []


async def healthy_canary(cluster: Cluster) -> None:
    await ready_v1(cluster)
    cluster.edit(model={"uri": "s3://models/m2.onnx", "version": "v2"})
    await cluster.sync(on_spec=True)
    assert ("apply", "Deployment", "m-canary") in cluster.writes()
    assert cluster.md()["status"]["canary"]["state"] == "Stepping"


async def test_a_healthy_canary_is_promoted_in_order(cluster: Cluster) -> None:
    await healthy_canary(cluster)
    cluster.settle()  # the canary pod is ready: the stable shrinks by one
    await cluster.sync()
    stable = cluster.kube.find("Deployment", "ns", "m")
    assert stable is not None
    assert stable["spec"]["replicas"] == 1
    cluster.settle()
    cluster.tick(5)
    await cluster.sync()  # analysis due: passes; the pause is not over yet
    canary = cluster.md()["status"]["canary"]
    assert (canary["lastAnalysis"]["result"], canary["step"]) == ("pass", 1)
    cluster.tick(6)
    await cluster.sync()  # pause over, a passing analysis after the weight: promote
    assert cluster.md()["status"]["canary"]["state"] == "Promoting"
    stable = cluster.kube.find("Deployment", "ns", "m")
    assert stable is not None
    assert stable["spec"]["replicas"] == 2
    assert (
        stable["spec"]["template"]["metadata"]["labels"]["serving.modelyard.io/model-version"]
        == "v2"
    )
    cluster.settle()
    await cluster.sync()
    status = cluster.md()["status"]
    assert (status["phase"], status["stable"]["version"], status["canary"]["revision"]) == (
        "Ready",
        "v2",
        "",
    )
    assert ("delete", "Deployment", "m-canary") in cluster.writes()
    assert status["history"][0]["result"] == "Promoted"
    metrics = cluster.controller.metrics
    assert metrics.rollouts_total.labels("ns", "m", "promoted")._value.get() == 1
    assert metrics.analysis_checks_total.labels("ns", "m", "error-rate", "pass")._value.get() >= 1


async def test_a_slow_canary_is_rolled_back_and_stays_rolled_back(cluster: Cluster) -> None:
    await healthy_canary(cluster)
    cluster.settle()
    await cluster.sync()
    cluster.settle()
    cluster.source.latency["canary"] = 0.5
    cluster.tick(5)
    await cluster.sync()
    status = cluster.md()["status"]
    assert status["phase"] == "RollingBack"
    assert "latency-p99" in status["canary"]["reason"]
    stable = cluster.kube.find("Deployment", "ns", "m")
    assert stable is not None
    assert stable["spec"]["replicas"] == 2  # the stable first, back to full size
    assert cluster.kube.find("Deployment", "ns", "m-canary") is not None
    cluster.settle()
    await cluster.sync()
    status = cluster.md()["status"]
    assert cluster.kube.find("Deployment", "ns", "m-canary") is None
    assert (status["phase"], status["rolledBack"]["result"]) == ("Degraded", "RolledBack")
    assert any(e["reason"] == "RolledBack" and e["type"] == "Warning" for e in cluster.events())
    cluster.settle()
    await cluster.sync()  # the canary's pods are gone from the index too
    before = len(cluster.writes())
    for _ in range(3):
        cluster.tick(60)
        await cluster.sync()
    assert cluster.writes()[before:] == []  # rolled back stays rolled back


async def test_actions_are_acted_on_once_and_removed(cluster: Cluster) -> None:
    await healthy_canary(cluster)
    cluster.md()["metadata"]["annotations"] = {ACTION_ANNOTATION: "abort"}
    await cluster.sync()
    assert ACTION_ANNOTATION not in cluster.md()["metadata"].get("annotations", {})
    assert cluster.md()["status"]["canary"]["ending"] == "Aborted"
    cluster.md()["metadata"]["annotations"] = {ACTION_ANNOTATION: "resume"}
    await cluster.sync()
    assert ACTION_ANNOTATION not in cluster.md()["metadata"].get("annotations", {})
    ignored = [e for e in cluster.events() if e["reason"] == "ActionIgnored"]
    assert ignored
    assert "resume does not apply now" in ignored[0]["message"]


async def test_prometheus_down_holds_the_canary(cluster: Cluster) -> None:
    await healthy_canary(cluster)
    cluster.settle()
    cluster.source.down = True
    for _ in range(4):
        cluster.tick(6)
        await cluster.sync()
        cluster.settle()
    status = cluster.md()["status"]
    assert status["canary"]["state"] == "Stepping"
    assert status["canary"]["lastAnalysis"]["result"] == "inconclusive"
    assert "unreachable" in status["canary"]["lastAnalysis"]["checks"][0]["message"]
    cluster.source.down = False
    cluster.tick(6)
    await cluster.sync()
    assert cluster.md()["status"]["canary"]["state"] == "Promoting"


async def test_a_missing_secret_is_a_condition(cluster: Cluster) -> None:
    cluster.md()["spec"]["model"]["storageSecretRef"] = {"name": "creds"}
    await cluster.sync(on_spec=True)
    ready = next(c for c in cluster.md()["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")


async def test_an_object_deleted_mid_sync_is_left_alone(cluster: Cluster) -> None:
    cluster.controller.view = cluster.view()
    del cluster.kube.objects[("ModelDeployment", "ns", "m")]
    cluster.kube.fail_next("patch_status", "ModelDeployment", K8sNotFoundError(404, "gone"))
    await cluster.controller.sync(KEY)
    assert cluster.writes() == []

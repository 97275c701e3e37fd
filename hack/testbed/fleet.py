"""A fleet of ModelDeployments driven straight through the API: created in bulk, their specs
changed in bursts, and checked for convergence while faults are injected around them.

Used by ``tests/integration/cluster/test_faults.py`` and ``hack/bench_faults.py``. A request
that meets a fault (connection refused, a 5xx while etcd is away) is sent again until it
succeeds, as a user's kubectl would be, and counted (``Fleet.resent``); the fleet remembers the
version each object's spec was last given (``Fleet.expected``). ``problems`` is pure: listed
objects in, what is wrong out, so an integration test built on it can be shown to fail.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from modelyard_runtime.contract.names import REVISION_LABEL, TRACK_LABEL, VERSION_LABEL

Object = dict[str, Any]
MDEPS: Final = "/apis/serving.modelyard.io/v1alpha1/namespaces/{ns}/modeldeployments"
MANAGED: Final = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmodelyard-operator"
# A canary of one step with no checks: every version change creates a canary Deployment,
# promotes it and deletes it, so a crash mid-rollout can leave one behind if resuming is wrong.
FAST_CANARY: Final = {"steps": [{"weight": 50, "pause": "0s"}], "analysis": {"metrics": []}}
# Statuses worth sending a request again for: the apiserver or etcd is away, or busy.
TRANSIENT: Final = frozenset({429, 500, 502, 503, 504})


class FleetError(AssertionError):
    """A request failed for good, or the fleet did not converge in time (with the problems)."""


class Fleet:
    """ModelDeployments ``<prefix>-NNNN`` in ``namespace``, through admin HTTPS connections."""

    def __init__(
        self, cluster: LocalCluster, namespace: str, *, rollout: Mapping[str, Any] | None = None
    ) -> None:
        host, port = cluster.server.removeprefix("https://").split(":")
        context = ssl.create_default_context(cafile=str(cluster.pki.ca))
        context.load_cert_chain(str(cluster.pki.cert("admin")), str(cluster.pki.key("admin")))
        self.host, self.port, self.context = host, int(port), context
        self.namespace = namespace
        self.rollout = dict(FAST_CANARY if rollout is None else rollout)
        self.expected: dict[str, str] = {}  # name -> the version its spec was given last
        self.resent = 0  # requests sent again after a fault
        self.verbose = False  # print progress while waiting
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPSConnection] = []

    # -- requests ----------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPSConnection:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, timeout=60
            )
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def close(self) -> None:
        """Close every thread's connection (call once no other thread uses the fleet)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        ok: Iterable[int] = (200, 201),
        timeout: float = 180.0,
    ) -> Object:
        """Send until the answer is one of ``ok``; connection errors and ``TRANSIENT`` statuses
        are sent again (each counted), anything else fails at once."""
        deadline = time.monotonic() + timeout
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        while True:
            failure: str
            try:
                conn = self._connection()
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                text = response.read()
                if response.status in set(ok):
                    return json.loads(text) if text else {}
                failure = f"HTTP {response.status}: {text[:300]!r}"
                if response.status not in TRANSIENT:
                    raise FleetError(f"{method} {path}: {failure}")
            except (OSError, http.client.HTTPException) as e:
                self._drop_connection()
                failure = repr(e)
            if time.monotonic() > deadline:
                raise FleetError(f"{method} {path} failed for {timeout:.0f} s: {failure}")
            with self._lock:
                self.resent += 1
            time.sleep(0.5)  # the apiserver or etcd is away: try again shortly

    def items(self, path: str) -> list[Object]:
        items: list[Object] = self.request("GET", path)["items"]
        return items

    # -- the fleet ---------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return MDEPS.format(ns=self.namespace)

    def create(
        self,
        names: Sequence[str],
        *,
        version: str = "v1",
        replicas: int = 1,
        extra_spec: Mapping[str, Any] | None = None,
    ) -> None:
        for name in names:
            spec = {"rollout": self.rollout, **(extra_spec or {})}
            manifest = md_manifest(name, version=version, replicas=replicas, extra_spec=spec)
            # 409: an earlier try went through before its answer was lost.
            self.request("POST", self.base, manifest, ok=(201, 409))
            self.expected[name] = version

    def change(self, names: Sequence[str], version: str) -> None:
        """A new model version for each of ``names``: a rollout (a canary) each."""
        patch = {"spec": {"model": {"version": version}}}
        for name in names:
            self.request(
                "PATCH", f"{self.base}/{name}", patch, content_type="application/merge-patch+json"
            )
            self.expected[name] = version

    def snapshot(self) -> tuple[list[Object], list[Object], list[Object], list[Object]]:
        """ModelDeployments, the operator's Deployments, their ReplicaSets and the operator's
        Services, as listed now."""
        ns = self.namespace
        mdeps = self.items(self.base)
        deployments = self.items(f"/apis/apps/v1/namespaces/{ns}/deployments?{MANAGED}")
        replicasets = self.items(f"/apis/apps/v1/namespaces/{ns}/replicasets?{MANAGED}")
        services = self.items(f"/api/v1/namespaces/{ns}/services?{MANAGED}")
        return mdeps, deployments, replicasets, services

    def settled(self) -> int:
        """How many ModelDeployments report their latest spec done (status alone; cheap)."""
        return sum(1 for md in self.items(self.base) if not md_problems(md, self.expected))

    def wait_converged(self, timeout: float, *, poll: float = 2.0) -> float:
        """Seconds until ``problems`` is empty; ``FleetError`` listing them after ``timeout``."""
        started = time.monotonic()
        deadline = started + timeout
        found: list[str] = []
        while time.monotonic() < deadline:
            settled = self.settled()
            if self.verbose:
                print(f"{time.monotonic() - started:6.1f} s: {settled} settled", flush=True)
            if settled == len(self.expected):
                found = problems(self.expected, *self.snapshot())
                if not found:
                    return time.monotonic() - started
            time.sleep(poll)  # polling the API server with a deadline
        if not found:
            found = problems(self.expected, *self.snapshot())
        shown = "\n  ".join(found[:20])
        raise FleetError(f"{len(found)} problems after {timeout:.0f} s (first 20):\n  {shown}")


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def md_problems(md: Mapping[str, Any], expected: Mapping[str, str]) -> list[str]:
    """What the status of one ModelDeployment says is not done yet (its children aside)."""
    meta, spec, status = md["metadata"], md["spec"], md.get("status") or {}
    name = meta["name"]
    want = expected.get(name)
    if want is None:
        return [f"{name}: not one of the fleet"]
    found = []
    if spec["model"]["version"] != want:
        found.append(f"{name}: spec says {spec['model']['version']}, the fleet wrote {want}")
    if status.get("observedGeneration") != meta["generation"]:
        found.append(f"{name}: observedGeneration {status.get('observedGeneration')} of "
                     f"{meta['generation']}")  # fmt: skip
    if status.get("phase") != "Ready":
        found.append(f"{name}: phase {status.get('phase')}")
    if (status.get("stable") or {}).get("version") != want:
        found.append(f"{name}: stable {(status.get('stable') or {}).get('version')}, not {want}")
    if (status.get("canary") or {}).get("revision"):
        found.append(f"{name}: canary {status['canary']['revision']} still in status")
    history = status.get("history") or []
    head = history[0] if history else {}
    if head.get("version") != want or head.get("result") not in ("Ready", "Promoted"):
        found.append(f"{name}: history head {head.get('version')} {head.get('result')}")
    return found


def problems(
    expected: Mapping[str, str],
    mdeps: Sequence[Mapping[str, Any]],
    deployments: Sequence[Mapping[str, Any]],
    replicasets: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Everything that keeps the fleet from being converged: each ModelDeployment exists with
    its latest spec done (``md_problems``); it owns exactly one Deployment, the stable one, of
    the stable revision and version, and its Service; no operator Deployment is left without
    its owner; every revision its ReplicaSets ever ran is in ``status.history``, and no entry
    but the newest is still ``Progressing``."""
    found: list[str] = []
    by_name = {md["metadata"]["name"]: md for md in mdeps}
    uids = {md["metadata"]["uid"] for md in mdeps}
    for name in sorted(set(expected) - set(by_name)):
        found.append(f"{name}: ModelDeployment missing")
    for deployment in deployments:
        if not any(owned_by(deployment, uid) for uid in uids):
            found.append(f"Deployment {deployment['metadata']['name']} left behind, no owner")
    for _, md in sorted(by_name.items()):
        found += md_problems(md, expected)
        found += _children_problems(md, deployments, replicasets)
        if not any(owned_by(service, md["metadata"]["uid"]) for service in services):
            found.append(f"{md['metadata']['name']}: Service missing")
    return found


def _children_problems(
    md: Mapping[str, Any],
    deployments: Sequence[Mapping[str, Any]],
    replicasets: Sequence[Mapping[str, Any]],
) -> list[str]:
    name, uid = md["metadata"]["name"], md["metadata"]["uid"]
    status = md.get("status") or {}
    stable = status.get("stable") or {}
    mine = [d for d in deployments if owned_by(d, uid)]
    found = []
    if len(mine) != 1:
        names = sorted(d["metadata"]["name"] for d in mine)
        return [f"{name}: {len(mine)} Deployments {names}, not exactly one"]
    (deployment,) = mine
    labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
    if deployment["metadata"]["name"] != name or labels.get(TRACK_LABEL) != "stable":
        found.append(f"{name}: its one Deployment is {deployment['metadata']['name']}")
    if labels.get(VERSION_LABEL) != md["spec"]["model"]["version"]:
        found.append(f"{name}: Deployment runs {labels.get(VERSION_LABEL)}")
    if labels.get(REVISION_LABEL) != stable.get("revision"):
        found.append(f"{name}: Deployment revision {labels.get(REVISION_LABEL)}, "
                     f"status {stable.get('revision')}")  # fmt: skip
    history = status.get("history") or []
    recorded = {entry.get("revision") for entry in history}
    ran = {
        (rs["metadata"].get("labels") or {}).get(REVISION_LABEL)
        for rs in replicasets
        if owned_by(rs, deployment["metadata"]["uid"])
    }
    for revision in sorted(str(r) for r in ran - recorded):
        found.append(f"{name}: revision {revision} ran but is not in history")
    stuck = [e.get("version") for e in history[1:] if e.get("result") == "Progressing"]
    if stuck:
        found.append(f"{name}: older history entries still Progressing: {stuck}")
    return found

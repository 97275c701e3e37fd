"""Trust on the real apiserver (tier C): the NetworkPolicy the operator applies as its own
ServiceAccount, validated and read back; what that ServiceAccount may do, against the role
documented in docs/security.md; runtime pods without a ServiceAccount token.

The tier C node is kwok's and the real node's CNI is the plain ``bridge`` plugin: neither
enforces NetworkPolicy, so the policy is checked as an API object here (the apiserver's
validation, and that it selects the runtime pods with the ports and peers the spec asks for) and
its rules in tests/unit/operator/reconcile/test_trust.py, not by sending traffic.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from hack.cluster.base import ROOT
from hack.cluster.localcluster import LocalCluster
from hack.testbed.manifests import md_manifest
from hack.testbed.operator import OperatorProcess
from modelyard_operator.api.v1alpha1 import ModelDeployment
from modelyard_operator.reconcile.network import build_network_policy, with_network_defaults
from tests.support.kube import eventually, get

pytestmark = pytest.mark.cluster

OPERATOR = "system:serviceaccount:modelyard-system:modelyard-operator"
PEERS = [
    {"namespaceSelector": {"matchLabels": {"team": "fraud"}},
     "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}},
    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
]  # fmt: skip


def apply(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))


def test_network_policy_is_applied_valid_and_removed(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    network = {"enabled": True, "inferenceFrom": PEERS, "monitoringNamespace": "observability"}
    manifest = md_manifest("guarded", replicas=1, extra_spec={"networkPolicy": network})
    apply(cluster, namespace, manifest)
    eventually(lambda: get(cluster, namespace, "networkpolicy", "guarded") is not None,
               what="the NetworkPolicy applied by the operator")  # fmt: skip
    live = get(cluster, namespace, "networkpolicy", "guarded")
    assert live is not None
    parsed = {**manifest, "metadata": {"name": "guarded", "namespace": namespace, "uid": "u"}}
    md = with_network_defaults(ModelDeployment.model_validate(parsed), enabled=False,
                               monitoring_namespace="monitoring")  # fmt: skip
    desired = build_network_policy(md)
    assert desired is not None
    assert live["spec"] == desired["spec"]  # accepted and stored as rendered, nothing defaulted

    def template() -> dict[str, Any]:
        deployment = get(cluster, namespace, "deployment", "guarded")
        return dict((deployment or {}).get("spec", {}).get("template", {}))

    eventually(lambda: bool(template()), what="the runtime Deployment")
    labels = template()["metadata"]["labels"]
    assert labels.items() >= live["spec"]["podSelector"]["matchLabels"].items()
    ports = {p["name"]: p["containerPort"] for p in template()["spec"]["containers"][0]["ports"]}
    assert ports == {"http": 8080, "grpc": 8081, "metrics": 8082}
    assert template()["metadata"]["annotations"]["prometheus.io/port"] == "8082"
    rules = live["spec"]["ingress"]
    assert [[p["port"] for p in rule["ports"]] for rule in rules] == [[8080, 8081], [8082]]

    manifest["spec"]["networkPolicy"] = {"enabled": False}
    apply(cluster, namespace, manifest)
    eventually(lambda: get(cluster, namespace, "networkpolicy", "guarded") is None,
               what="the NetworkPolicy deleted when the spec turns it off")  # fmt: skip
    eventually(lambda: "annotations" not in template()["metadata"],
               what="the metrics back on the HTTP port")  # fmt: skip


def test_kwok_pods_have_no_service_account_token(
    operator: OperatorProcess, cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, namespace, md_manifest("tokenless", replicas=1))

    def pods() -> list[dict[str, Any]]:
        found = get(cluster, namespace, "pods", "-l", "app.kubernetes.io/instance=tokenless")
        return list((found or {}).get("items", []))

    eventually(lambda: bool(pods()), what="a runtime pod")
    (pod,) = pods()
    # The apiserver's ServiceAccount admission would have added a kube-api-access volume.
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert not [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access")]


ROW = re.compile(r"^(\S+)\s+\[\]\s+\[\]\s+\[([a-z ]*)\]$")
NON_RESOURCE_ROW = re.compile(r"^\s+\[(/[^\]]*)\]\s+\[\]\s+\[([a-z ]*)\]$")


def can_i_list(cluster: LocalCluster, namespace: str) -> tuple[dict[str, set[str]], set[str]]:
    """(resource -> verbs, verbs on non-resource URLs) the operator's ServiceAccount has."""
    text = cluster.kubectl("auth", "can-i", "--list", f"--as={OPERATOR}", "-n", namespace).stdout
    resources: dict[str, set[str]] = {}
    url_verbs: set[str] = set()
    for line in text.splitlines()[1:]:
        if match := ROW.match(line):
            resources.setdefault(match.group(1), set()).update(match.group(2).split())
        elif match := NON_RESOURCE_ROW.match(line):
            url_verbs.update(match.group(2).split())
        elif line.strip():
            raise AssertionError(f"unexpected line in kubectl auth can-i --list: {line!r}")
    return resources, url_verbs


def documented_role() -> dict[str, set[str]]:
    """The table in docs/security.md: | `resource` | verbs | why |."""
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("## What the operator may do", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([a-z, ]+) \|", section, re.MULTILINE)
    assert rows, "no role table in docs/security.md"
    return {resource: {v.strip() for v in verbs.split(",")} for resource, verbs in rows}


def test_the_operator_can_do_exactly_what_is_documented(
    installed: LocalCluster, namespace: str
) -> None:
    documented = documented_role()
    for where in (namespace, "kube-system"):  # a ClusterRole: the same in every namespace
        resources, url_verbs = can_i_list(installed, where)
        assert resources == documented, f"in {where}"
        assert url_verbs == {"get"}  # discovery and health URLs, read-only
    secrets = ["auth", "can-i", f"--as={OPERATOR}"]
    assert installed.kubectl(*secrets, "get", "secrets", "-n", namespace).stdout.strip() == "yes"
    for verb in ("list", "watch"):
        answer = installed.kubectl(*secrets, verb, "secrets", "--all-namespaces", check=False)
        assert answer.stdout.strip() == "no", f"{verb} secrets"
    for verb, resource in (("get", "configmaps"), ("create", "rolebindings"),
                           ("escalate", "clusterroles"), ("create", "pods/exec")):  # fmt: skip
        answer = installed.kubectl(*secrets, verb, resource, "-n", namespace, check=False)
        assert answer.stdout.strip() == "no", f"{verb} {resource}"

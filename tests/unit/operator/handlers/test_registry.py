"""The operator finds the apiserver from a pod's environment, as client-go does."""

from __future__ import annotations

import pytest

from modelyard_operator.handlers.registry import in_cluster_server


@pytest.mark.parametrize(
    ("env", "server"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
         "https://10.0.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"},
         "https://[fd00::1]:6443"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_in_cluster_server(env: dict[str, str], server: str | None) -> None:
    assert in_cluster_server(env) == server

"""Operator configuration: file, env over file, and a clear error for every bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelyard_operator.config import load_config
from modelyard_operator.errors import ConfigError


def test_defaults_without_file_or_env() -> None:
    config = load_config(None, {})
    assert config.namespaces == ()
    assert config.default_runtime_image.startswith("ghcr.io/modelyard/modelyard-runtime:")


def test_env_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("defaultRuntimeImage: registry.local/rt:1\nnamespaces: [a, b]\n")
    config = load_config(path, {"MODELYARD_OPERATOR_NAMESPACES": "c, d"})
    assert config.default_runtime_image == "registry.local/rt:1"
    assert config.namespaces == ("c", "d")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MODELYARD_OPERATOR_METRICS_PORT": "99999"},
            "metrics_port (env MODELYARD_OPERATOR_METRICS_PORT)",
        ),
        ({"MODELYARD_OPERATOR_PROMETHEUS_URL": "prometheus:9090"}, "prometheus_url"),
        ({"MODELYARD_OPERATOR_LOG_FORMAT": "xml"}, "log_format"),
        ({"MODELYARD_OPERATOR_DEFAULT_RUNTIME_IMAGE": ""}, "default_runtime_image"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="invalid operator configuration") as caught:
        load_config(None, env)
    assert message in str(caught.value)


def test_unknown_keys_and_bad_files_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("defaultImage: x\n")
    with pytest.raises(ConfigError, match="default_image"):
        load_config(path, {})
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(path, {})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", {})


def test_cli_exits_2_before_connecting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelyard_operator"],
        env={"MODELYARD_OPERATOR_HEALTH_PORT": "-1", "PATH": "/usr/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "health_port" in result.stderr


def test_leader_election_timing_must_leave_the_leader_time_to_stop() -> None:
    config = load_config(None, {"MODELYARD_OPERATOR_LEADER_ELECTION": "true"})
    assert config.leader_election
    with pytest.raises(ConfigError, match="retry period < renew deadline < lease duration"):
        load_config(None, {"MODELYARD_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": "20"})

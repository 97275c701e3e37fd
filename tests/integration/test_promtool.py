"""promtool, at the cluster's Prometheus version, checks the rule files and runs the rule unit
tests in ``deploy/prometheus/tests/`` (every alert both firing and silent)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from hack import alerts
from hack.cluster.base import ROOT
from hack.cluster.localcluster import bin_dir

pytestmark = pytest.mark.slow

UNIT_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yaml"))


@pytest.fixture(scope="module")
def promtool() -> Path:
    return bin_dir(prometheus=True) / "promtool"


def run(promtool: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def pinned_prometheus() -> str:
    for line in (ROOT / "hack" / "cluster" / "versions.env").read_text().splitlines():
        if line.startswith("PROMETHEUS_VERSION="):
            return line.split("=", 1)[1].split()[0]
    raise AssertionError("versions.env pins no PROMETHEUS_VERSION")


def test_promtool_is_the_version_the_cluster_runs(promtool: Path) -> None:
    minor = pinned_prometheus().removeprefix("v0.")  # v0.313.5 is Prometheus 3.13.5
    expected = f"{minor[0]}.{minor[1:]}"
    out = run(promtool, "--version")
    assert out.returncode == 0, out.stderr
    assert f"version {expected}" in out.stdout + out.stderr


def test_the_rule_file_passes_promtool_check(promtool: Path) -> None:
    out = run(promtool, "check", "rules", ROOT / alerts.RULES_FILE)
    assert out.returncode == 0, out.stdout + out.stderr
    count = sum(len(group.rules) for group in alerts.groups())
    assert f"SUCCESS: {count} rules found" in out.stdout


def test_the_prometheus_rule_spec_passes_promtool_check(promtool: Path, tmp_path: Path) -> None:
    crd = yaml.safe_load((ROOT / alerts.PROMETHEUS_RULE_FILE).read_text())
    unwrapped = tmp_path / "spec.yaml"
    unwrapped.write_text(yaml.safe_dump(crd["spec"]))
    out = run(promtool, "check", "rules", unwrapped)
    assert out.returncode == 0, out.stdout + out.stderr


def test_rule_unit_tests_pass(promtool: Path) -> None:
    assert UNIT_TESTS
    out = run(promtool, "test", "rules", *UNIT_TESTS)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(UNIT_TESTS)


def test_a_wrong_expectation_fails_the_unit_tests(promtool: Path, tmp_path: Path) -> None:
    """The unit tests compare labels and annotations: a changed severity is caught."""
    source = ROOT / "deploy" / "prometheus" / "tests" / "operator.yaml"
    edited = tmp_path / "operator.yaml"
    text = source.read_text().replace("severity: critical", "severity: warning")
    edited.write_text(text.replace("../modelyard-alerts.yaml", str(ROOT / alerts.RULES_FILE)))
    out = run(promtool, "test", "rules", edited)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "ModelyardOperatorDown" in out.stdout + out.stderr

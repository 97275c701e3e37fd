"""``modelyard rollout``: what status and history print, and which actions are refused before
anything is written (against an in-memory set of ModelDeployments)."""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Iterator

import pytest

from hack.testbed.manifests import md_manifest
from modelyard_cli.errors import CliError
from modelyard_cli.main import build_parser
from modelyard_cli.rollout import commands, render
from modelyard_cli.rollout.kube import ModelDeployments
from modelyard_operator.api.v1alpha1 import (
    AnalysisStatus,
    CanaryStatus,
    CheckResult,
    HistoryEntry,
    ModelDeployment,
    RolledBack,
    TrackStatus,
)

NOW = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC)


def stepping(**canary: object) -> ModelDeployment:
    md = ModelDeployment.model_validate(md_manifest("fraud") | {"metadata": {"name": "fraud",
                                                                "namespace": "prod"}})  # fmt: skip
    check = CheckResult(metric="latency-p99", result="fail", value=0.31, bound="<= 0.25 s",
                        message="canary p99 310.0 ms: above 250ms")  # fmt: skip
    status = md.status.model_copy(update={
        "phase": "Progressing",
        "stable": TrackStatus(version="v1", revision="aaa", ready_replicas=3),
        "canary": CanaryStatus(
            version="v2", revision="bbb", state="Stepping", step=1, steps=2, desired_weight=10,
            weight=25, replicas=1, ready_replicas=1, started_at="2026-01-01T00:00:00Z",
            step_started_at="2026-01-01T00:00:30Z", failed_checks=1,
            last_analysis=AnalysisStatus(time="2026-01-01T00:00:55Z", result="fail",
                                         checks=[check]),
        ).model_copy(update=canary),
        "history": [HistoryEntry(version="v2", revision="bbb", result="Progressing",
                                 started_at="2026-01-01T00:00:00Z")],
    })  # fmt: skip
    return md.model_copy(update={"status": status})


def test_status_shows_the_step_weight_and_each_check() -> None:
    text = "\n".join(render.status_lines(stepping(), NOW))
    assert "fraud (prod): Progressing" in text
    assert "canary:  v2 (bbb), Stepping" in text
    assert "step 1/2: 10% desired, 25% achieved (1/1 canary pods ready)" in text
    assert "step reached 30s ago, pause 1m (30s left)" in text
    assert "failed checks: 1/3" in text
    assert "latency-p99  fail" in text
    assert "0.31" in text
    assert "canary p99 310.0 ms: above 250ms" in text


def test_status_after_a_rollback_says_it_stays() -> None:
    md = stepping()
    md = md.model_copy(update={"status": md.status.model_copy(update={
        "canary": CanaryStatus(), "phase": "Degraded",
        "rolled_back": RolledBack(version="v2", revision="bbb", result="RolledBack",
                                  reason="latency-p99 0.31 (bound <= 0.25 s)",
                                  at="2026-01-01T00:00:58Z"),
    })})  # fmt: skip
    text = "\n".join(render.status_lines(md, NOW))
    assert "RolledBack: v2 (bbb) 2s ago: latency-p99 0.31 (bound <= 0.25 s)" in text
    assert "until the spec changes, or `rollout retry`" in text


def test_history_is_a_table() -> None:
    lines = render.history_lines(stepping())
    assert lines[0].split()[:3] == ["VERSION", "REVISION", "RESULT"]
    assert lines[1].split()[:3] == ["v2", "bbb", "Progressing"]


class Memory:
    def __init__(self, md: ModelDeployment) -> None:
        self.md = md
        self.actions: list[str] = []

    def get(self, namespace: str, name: str) -> ModelDeployment:
        if (namespace, name) != ("prod", "fraud"):
            raise CliError(f"modeldeployment {namespace}/{name}: not found")
        return self.md

    def set_action(self, namespace: str, name: str, action: str) -> None:
        self.actions.append(action)

    def follow(self, namespace: str, name: str, timeout: int) -> Iterator[ModelDeployment]:
        yield self.md


def run(argv: list[str], api: Memory) -> None:
    args = build_parser().parse_args(["rollout", *argv])

    def connect(_: argparse.Namespace) -> tuple[ModelDeployments, str]:
        return api, "prod"

    commands.run(args, connect_with=connect)


@pytest.mark.parametrize("verb", ["promote", "abort", "pause"])
def test_actions_that_apply_set_the_annotation(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Memory(stepping())
    run([verb, "fraud"], api)
    assert api.actions == [verb]
    assert f"prod/fraud: {verb} requested" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("verb", "words"),
    [("resume", "resume applies to a canary held by the pause action"),
     ("retry", "retry applies after a rollback")],
)  # fmt: skip
def test_actions_that_do_not_apply_are_refused_before_any_write(verb: str, words: str) -> None:
    api = Memory(stepping())
    with pytest.raises(CliError, match=words):
        run([verb, "fraud"], api)
    assert api.actions == []


def test_an_unknown_object_is_a_clear_error() -> None:
    with pytest.raises(CliError, match="modeldeployment prod/nope: not found"):
        run(["status", "nope"], Memory(stepping()))


def test_the_plugin_name_runs_the_same_cli() -> None:
    args = build_parser().parse_args(["rollout", "status", "fraud", "-n", "prod", "--watch"])
    assert (args.verb, args.name, args.namespace, args.watch) == ("status", "fraud", "prod", True)

"""The rollout state machine, step by step and as properties over random runs.

``World`` plays the cluster: the Deployments become what the plan says at once (pods start
ready when ``ready`` is set), and the clock moves by whole seconds, so each test reads as the
rollout a user would watch.
"""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard_operator.api.timefmt import rfc3339
from modelyard_operator.reconcile import rollout
from modelyard_operator.reconcile.observed import Track
from modelyard_operator.reconcile.rollout import Apply, Keep, Remove, Scale, Situation
from tests.unit.operator.builders import T0, D, E, S, canary_spec, model, steady


def test_the_first_revision_rolls_out_directly() -> None:
    md = model(replicas=2, extra_spec=canary_spec())
    plan = rollout.plan(Situation(md=md, revision=D, stable=Track(), canary=Track(), now=T0))
    assert plan.stable == Apply(2)
    assert plan.canary == Remove()
    assert plan.canary_status.state == ""


def test_a_new_revision_starts_a_canary_and_shrinks_the_stable_only_for_ready_pods() -> None:
    world = steady()
    world.ready = False
    plan = world.tick()
    assert plan.started
    assert plan.canary_status.state == "Stepping"
    assert (plan.canary_status.step, plan.canary_status.steps) == (1, 2)
    assert plan.canary == Apply(1)  # 25% of 4 pods
    assert plan.stable == Scale(4)  # nothing is ready on the canary yet
    assert not plan.canary_status.step_started_at
    world.canary = Track(True, D, 1, 1, 1, True)
    plan = world.tick(seconds=1)
    assert plan.stable == Scale(3)
    assert plan.canary_status.step_started_at == rfc3339(world.now)
    assert plan.canary_status.weight == 20  # 1 of 5 ready pods, until the stable shrinks
    assert world.tick(seconds=1).canary_status.weight == 25


def test_a_step_needs_its_pause_and_a_passing_analysis_after_the_weight_was_reached() -> None:
    world = steady()
    world.tick()
    world.tick(seconds=1)  # weight reached
    assert world.tick(analysis="pass", seconds=5).canary_status.step == 1  # pause not over
    assert world.tick(analysis="inconclusive", seconds=5).canary_status.step == 1
    plan = world.tick(analysis="pass", seconds=5)
    assert plan.canary_status.step == 2
    assert plan.canary == Apply(2)
    assert any(e.reason == "CanaryStep" for e in plan.events)


def test_passing_every_step_promotes_the_stable_then_removes_the_canary() -> None:
    world = steady()
    world.tick()
    world.tick(seconds=1)
    world.tick(analysis="pass", seconds=10)  # step 2
    world.tick(seconds=1)  # its weight reached
    plan = world.tick(analysis="pass", seconds=10)
    assert plan.canary_status.state == "Promoting"
    assert plan.stable == Apply(4)
    assert plan.canary == Keep()
    world.stable = Track(True, D, 4, 4, 4, True)
    plan = world.tick(seconds=1)
    assert plan.canary == Remove()
    assert plan.ending is not None
    assert (plan.ending.result, plan.ending.revision) == ("Promoted", D)
    assert (plan.stable_revision, world.phase()) == (D, "Ready")
    assert world.md.status.history[0].result == "Promoted"


def test_failed_checks_roll_back_the_stable_first_and_name_the_metric() -> None:
    world = steady()
    world.ready = True
    world.tick()
    world.tick(seconds=1)
    assert world.tick(analysis="fail", seconds=5).canary_status.failed_checks == 1
    world.ready = False  # the stable's new pods take a while
    plan = world.tick(analysis="fail", seconds=5)
    assert plan.canary_status.state == "RollingBack"
    assert "latency 0.5 (bound <= 0.25 s)" in plan.canary_status.reason
    assert plan.stable == Scale(4)
    assert plan.canary == Keep()  # the canary keeps its share until the stable is back
    assert world.phase() == "RollingBack"
    assert world.tick(seconds=1).canary == Keep()
    world.stable = Track(True, S, 4, 4, 4, True)
    plan = world.tick(seconds=1)
    assert plan.canary == Remove()
    assert plan.rolled_back is not None
    assert (plan.rolled_back.revision, plan.rolled_back.result) == (D, "RolledBack")
    assert world.phase() == "Degraded"
    assert world.md.status.history[0].result == "RolledBack"


def test_a_rolled_back_revision_stays_rolled_back_until_retry_or_a_new_spec() -> None:
    world = steady(analysis={"interval": "5s", "failureThreshold": 1, "minSampleCount": 1})
    world.tick()
    world.tick(seconds=1)
    world.tick(analysis="fail", seconds=5)
    world.tick(seconds=1)  # stable already full: the canary goes
    for _ in range(3):
        plan = world.tick(seconds=60)
        assert (plan.canary, plan.stable, plan.canary_status.state) == (Remove(), Scale(4), "")
    plan = world.tick(action="retry", seconds=1)
    assert plan.started
    assert plan.canary_status.state == "Stepping"
    assert plan.action_taken == "retry"
    assert plan.rolled_back is None
    other = steady()
    other.md = world.md
    assert other.tick(revision=E).canary_status.revision == E


def test_inconclusive_checks_never_promote_and_the_deadline_rolls_back() -> None:
    world = steady()
    world.md = world.md.model_copy(
        update={"spec": world.md.spec.model_copy(update={"progress_deadline": "30s"})}
    )
    world.tick()
    world.tick(seconds=1)
    for _ in range(7):  # 35 s of inconclusive checks: past pause + deadline (10 s + 30 s)? not yet
        plan = world.tick(analysis="inconclusive", seconds=5)
        assert plan.canary_status.state == "Stepping"
        assert plan.canary_status.step == 1
    plan = world.tick(analysis="inconclusive", seconds=5)
    assert plan.canary_status.state == "RollingBack"
    assert plan.canary_status.reason.startswith("no progress for 30s")
    assert "inconclusive" in plan.canary_status.reason


def test_a_failing_canary_pod_rolls_back_at_once() -> None:
    world = steady()
    world.tick()
    plan = world.tick(failure="DigestMismatch: verify: sha256 of x is 1, expected 0", seconds=1)
    assert plan.canary_status.state == "RollingBack"
    assert "DigestMismatch" in plan.canary_status.reason


@pytest.mark.parametrize(
    ("action", "state", "ending"),
    [("promote", "Promoting", "Promoted"), ("abort", "RollingBack", "Aborted")],
)
def test_promote_and_abort_act_at_once(action: str, state: str, ending: str) -> None:
    world = steady()
    world.tick()
    plan = world.tick(action=action, seconds=1)
    assert plan.action_taken == action
    assert (plan.canary_status.state, plan.canary_status.ending) == (state, ending)


def test_pause_holds_the_step_and_resume_lets_it_go() -> None:
    world = steady()
    world.tick()
    world.tick(seconds=1)
    plan = world.tick(action="pause", seconds=1)
    assert plan.canary_status.paused
    assert plan.paused
    assert world.phase() == "Paused"
    assert world.tick(analysis="pass", seconds=30).canary_status.step == 1
    plan = world.tick(action="resume", analysis="pass", seconds=5)
    assert not plan.canary_status.paused
    assert plan.canary_status.step == 2


def test_spec_paused_holds_before_the_first_step() -> None:
    world = steady(paused=True)
    plan = world.tick()
    assert plan.paused
    assert plan.canary == Remove()
    assert plan.canary_status.state == ""
    assert world.phase() == "Paused"
    assert not world.md.status.history or world.md.status.history[0].revision != D


@pytest.mark.parametrize("action", ["retry", "launch"])
def test_an_action_that_does_not_apply_is_removed_with_a_warning(action: str) -> None:
    world = steady()
    world.tick()
    plan = world.tick(action=action, seconds=1)
    assert plan.action_taken == action
    (warning,) = [e for e in plan.events if e.reason == "ActionIgnored"]
    assert warning.warning
    assert action in warning.message


def test_a_new_spec_mid_canary_restarts_it_and_the_old_one_is_superseded() -> None:
    world = steady()
    world.tick()
    world.tick(seconds=1)
    world.tick(analysis="fail", seconds=5)
    plan = world.tick(revision=E, seconds=1)
    assert plan.canary_status.revision == E
    assert (plan.canary_status.step, plan.canary_status.failed_checks) == (1, 0)
    assert plan.ending is not None
    assert (plan.ending.revision, plan.ending.result) == (D, "Superseded")


def test_going_back_to_the_stable_revision_removes_the_canary_quietly() -> None:
    world = steady()
    world.tick()
    plan = world.tick(revision=S, seconds=1)
    assert (plan.canary_status.state, plan.canary_status.ending) == ("RollingBack", "Superseded")
    plan = world.tick(revision=S, seconds=1)
    assert plan.rolled_back is None
    assert plan.canary == Remove()


def test_immediate_strategy_and_a_stable_with_no_ready_pod_roll_out_directly() -> None:
    world = steady(strategy="Immediate")
    assert world.tick().stable == Apply(4)
    broken = steady()
    broken.stable = Track(True, S, 4, 4, 0, False)
    assert broken.tick().canary_status.state == ""


def test_with_an_autoscaler_the_stable_keeps_its_size_and_the_canary_follows_it() -> None:
    world = steady()
    world.md = model(extra_spec={**canary_spec(), "autoscaling": {"minReplicas": 1,
                                                                  "maxReplicas": 10,
                                                                  "target": 4}},
                     status=world.md.status)  # fmt: skip
    world.stable = Track(True, S, 6, 6, 6, True)
    plan = world.tick()
    assert plan.canary == Apply(2)  # 25% of the 6 the autoscaler runs, rounded up
    assert plan.stable == Keep()


def test_an_autoscaled_rollback_grows_the_stable_by_the_canary_before_removing_it() -> None:
    world = steady()
    world.md = model(extra_spec={**canary_spec(), "autoscaling": {"minReplicas": 1,
                                                                  "maxReplicas": 7,
                                                                  "target": 4}},
                     status=world.md.status)  # fmt: skip
    world.stable = Track(True, S, 6, 6, 6, True)
    world.tick()
    world.tick(seconds=1)
    assert world.canary.ready == 2
    world.ready = False  # the stable's new pods take a while
    world.tick(analysis="fail", seconds=5)
    plan = world.tick(analysis="fail", seconds=5)
    assert plan.canary_status.state == "RollingBack"
    assert plan.canary_status.rollback_replicas == 7  # 6 + the canary's 2, capped at max 7
    plan = world.tick(seconds=1)
    assert plan.stable == Scale(7)
    assert plan.canary == Keep()  # its traffic has nowhere to go yet
    world.stable = Track(True, S, 7, 7, 7, True)
    plan = world.tick(seconds=1)
    assert plan.canary == Remove()
    assert plan.stable == Scale(7)  # then the autoscaler takes over from there
    assert world.tick(seconds=1).stable == Keep()


def test_analysis_is_due_once_per_interval_while_the_canary_steps() -> None:
    world = steady()
    world.tick()
    situation = Situation(md=world.md, revision=D, stable=world.stable, canary=world.canary,
                          now=world.now)  # fmt: skip
    assert rollout.analysis_due(situation)
    world.tick(analysis="pass", seconds=1)
    later = dataclasses.replace(
        situation, md=world.md, now=world.now + datetime.timedelta(seconds=4)
    )
    assert not rollout.analysis_due(later)
    assert rollout.analysis_due(
        dataclasses.replace(later, now=world.now + datetime.timedelta(seconds=5))
    )


# -- properties -----------------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["pass", "fail", "inconclusive", None]),
        st.sampled_from([None, None, None, None, "pause", "resume", "promote"]),
        st.integers(min_value=0, max_value=12),
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_no_sequence_of_verdicts_promotes_after_the_failures_reach_the_threshold(
    events: list[tuple[str | None, str | None, int, bool]],
) -> None:
    world = steady()
    threshold = world.md.spec.rollout.analysis.failure_threshold
    world.tick()
    doomed = False
    for result, action, seconds, ready in events:
        world.ready = ready
        action = None if action == "promote" else action  # a user promoting is not a verdict
        plan = world.tick(analysis=result, action=action, seconds=seconds)
        if plan.canary_status.failed_checks >= threshold:
            doomed = True
        if doomed:
            assert plan.canary_status.state != "Promoting"
            assert plan.ending is None or plan.ending.result != "Promoted"
            assert plan.stable_revision != D


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_weights_only_move_as_the_steps_say(
    events: list[tuple[str | None, str | None, int, bool]],
) -> None:
    world = steady()
    weights = [s.weight for s in world.md.spec.rollout.resolved_steps()]
    world.tick()
    seen: list[int] = []
    for result, action, seconds, ready in events:
        world.ready = ready
        plan = world.tick(analysis=result, action=action, seconds=seconds)
        canary = plan.canary_status
        if canary.state == "Stepping":
            assert canary.desired_weight == weights[canary.step - 1]
            assert isinstance(plan.canary, Apply)
            assert plan.canary.replicas == max(1, -(-4 * canary.desired_weight // 100))
            if not seen or seen[-1] != canary.desired_weight:
                seen.append(canary.desired_weight)
    # the weights visited are the steps' weights, in order, none skipped
    assert seen == weights[: len(seen)]

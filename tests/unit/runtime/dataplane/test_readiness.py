"""Readiness turns unready while draining; inference is still served then."""

from __future__ import annotations

from modelyard_runtime.dataplane.readiness import Readiness


class Siblings:
    def __init__(self, count: int) -> None:
        self.count = count
        self.ready = 0

    def ready_count(self) -> int:
        return self.ready


def test_loading_is_the_first_reason() -> None:
    readiness = Readiness()
    assert readiness.problem() == "the model is loading"
    readiness.not_ready_reason = ""
    assert readiness.problem() == ""


def test_draining_is_unready_but_still_serving() -> None:
    readiness = Readiness()
    readiness.not_ready_reason = ""
    readiness.draining = True
    assert readiness.problem() == "the server is shutting down"
    assert readiness.serving_problem() == ""


def test_siblings_must_all_be_ready_once() -> None:
    siblings = Siblings(2)
    readiness = Readiness(siblings)
    readiness.not_ready_reason = ""
    siblings.ready = 1
    assert readiness.problem() == "1 of 2 server processes are ready"
    siblings.ready = 2
    assert readiness.problem() == ""
    siblings.ready = 0  # seen ready once: remembered
    assert readiness.serving_problem() == ""

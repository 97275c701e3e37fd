"""Connection ages: a connection is marked once past its limit; closed ones are forgotten."""

from __future__ import annotations

import pytest

from modelyard_runtime.server.connections import JITTER, ConnectionAges, excess


def test_a_connection_is_marked_once_past_its_age() -> None:
    ages = ConnectionAges(30, seed=1)
    ages.sweep(["a"], now=100.0)
    ages.sweep(["a", "b"], now=100.0 + 30 * (1 - JITTER) - 0.001)
    assert ages.expired == frozenset()
    ages.sweep(["a", "b"], now=130.0)
    assert ages.expired == {"a"}
    ages.sweep(["a", "b"], now=200.0)
    assert ages.expired == {"a", "b"}


def test_closed_connections_are_forgotten() -> None:
    ages = ConnectionAges(10, seed=2)
    ages.sweep(["a", "b"], now=0.0)
    ages.sweep(["b"], now=20.0)
    assert ages.expired == {"b"}
    ages.sweep(["a"], now=21.0)  # the same key again is a new connection
    assert ages.expired == frozenset()


@pytest.mark.parametrize("seed", range(20))
def test_limits_spread_over_the_last_tenth_of_the_age(seed: int) -> None:
    ages = ConnectionAges(100, seed=seed)
    connections = list(range(50))
    ages.sweep(connections, now=0.0)
    ages.sweep(connections, now=90.0)
    before = set(ages.expired)
    ages.sweep(connections, now=100.0)
    assert before == set()
    assert ages.expired == set(connections)


def test_zero_age_never_marks_by_age() -> None:
    ages = ConnectionAges(0)
    ages.sweep(["a"], now=0.0)
    ages.sweep(["a"], now=1e9)
    assert ages.expired == frozenset()
    assert ConnectionAges(0).period == 1.0
    assert ConnectionAges(30).period == 1.0
    assert ConnectionAges(2).period == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("mine", "siblings", "expected"),
    [(6, [2], 2), (5, [3], 1), (4, [4], 0), (2, [6], 0), (5, [4], 0), (9, [1, 2], 5), (0, [], 0)],
)
def test_excess_is_what_a_process_holds_above_an_even_share(
    mine: int, siblings: list[int], expected: int
) -> None:
    assert excess(mine, siblings) == expected


def test_the_youngest_connections_are_shed_once_until_they_close() -> None:
    ages = ConnectionAges(0, seed=3)  # no age limit: only the split matters
    ages.sweep(["a"], now=0.0)
    ages.sweep(["a", "b"], now=1.0)
    ages.sweep(["a", "b", "c"], now=2.0, shed=2)
    assert ages.expired == {"b", "c"}
    ages.sweep(["a", "b", "c", "d"], now=3.0, shed=2)  # b and c still open: nothing new
    assert ages.expired == {"b", "c"}
    ages.sweep(["a", "d", "e"], now=4.0, shed=1)  # they reconnected (as d and e)
    assert ages.expired == {"e"}
    ages.sweep(["a", "d"], now=5.0)
    assert ages.expired == frozenset()

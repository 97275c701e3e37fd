"""The pure parts of distill and factorize (no torch): agreement and perplexity arithmetic, the
data-set checks and split, the rank rule, the settings checks, the batches, interleaved timing."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelyard_cli.errors import ModelToolError
from modelyard_cli.models import compare, dataset, distill, factorize, measure


def test_mean_kl_accuracy_and_perplexity_by_hand() -> None:
    reference = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    candidate = np.log(np.array([[0.25, 0.75], [0.9, 0.1]]))
    kl_first = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert compare.mean_kl(reference, candidate) == pytest.approx(kl_first / 2)
    assert compare.mean_kl(candidate, candidate) == pytest.approx(0.0, abs=1e-12)
    assert compare.accuracy(candidate, np.array([1, 1])) == 0.5
    assert compare.perplexity(candidate, np.array([1, 0])) == pytest.approx(
        math.exp(-(math.log(0.75) + math.log(0.9)) / 2)
    )


def test_next_token_targets_shift_the_tokens_or_use_labels() -> None:
    tokens = np.array([[1, 2, 3], [3, 2, 1]])
    positions, targets = compare.next_token_targets([tokens], (2, 3, 4), None) or (None, None)
    assert positions == slice(0, -1)
    np.testing.assert_array_equal(targets, [[2, 3], [2, 1]])
    labels = np.zeros((2, 3), np.int64)
    assert compare.next_token_targets([tokens], (2, 3, 4), labels) == (slice(None), labels)
    assert compare.next_token_targets([tokens], (2, 4), None) is None  # a classifier
    assert compare.next_token_targets([tokens.astype(np.float32)], (2, 3, 4), None) is None
    assert compare.next_token_targets([tokens + 2], (2, 3, 4), None) is None  # past the vocabulary


def test_split_holds_out_the_first_rows_of_the_seeded_permutation() -> None:
    data = dataset.DataSet({"x": np.arange(10.0)[:, None]}, np.arange(10))
    train, held = dataset.split(data, 0.25, seed=7)
    order = np.random.default_rng(7).permutation(10)
    np.testing.assert_array_equal(held.labels, order[:3])
    np.testing.assert_array_equal(train.labels, order[3:])
    with pytest.raises(ModelToolError, match="leaves nothing to train on"):
        dataset.split(dataset.DataSet({"x": np.zeros((1, 1))}, None), 0.5, seed=0)


def test_data_set_takes_floats_as_float32_and_checks_unknown_axes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, allow_pickle=False, tokens=np.zeros((4, 5), np.int32), labels=np.full(4, 0.5))
    with pytest.raises(ModelToolError, match="labels 'labels' must be integer class indices"):
        dataset.load_data_set(path, None, labels=None)
    np.savez(path, allow_pickle=False, tokens=np.zeros((4, 5), np.int32), labels=np.ones(4))
    assert dataset.load_data_set(path, None, labels=None).labels.dtype == np.int64  # type: ignore[union-attr]
    np.savez(path, allow_pickle=False, x=np.zeros((4, 5)), y=np.zeros(4, np.int64))
    loaded = dataset.load_data_set(path, None, labels="y")
    assert loaded.inputs["x"].dtype == np.float32
    assert loaded.specs()[0].shape == (1, 5)
    np.savez(path, allow_pickle=False, x=np.zeros((4, 5)), names=np.array(["a", "b", "c", "d"]))
    with pytest.raises(ModelToolError, match="array 'names' holds str32 values, not numbers"):
        dataset.load_data_set(path, None, labels=None)
    np.savez(path, allow_pickle=False, x=np.zeros((4, 5)), y=np.zeros(4, np.int64))
    any_length = [dataset.Expected("x", (None,), "float32")]
    assert dataset.load_data_set(path, any_length, labels="y").rows == 4
    with pytest.raises(ModelToolError, match=r"takes rows of shape \?x3"):
        dataset.load_data_set(path, [dataset.Expected("x", (None, 3), "float32")], labels="y")


def test_choose_rank_by_rank_or_energy() -> None:
    singular = np.array([3.0, 2.0, 1.0, 0.0])  # squares 9, 4, 1, 0 of 14
    assert factorize.choose_rank(singular, factorize.Selection(rank=9)) == 4
    assert factorize.choose_rank(singular, factorize.Selection(energy=9 / 14)) == 1
    assert factorize.choose_rank(singular, factorize.Selection(energy=0.65)) == 2
    assert factorize.choose_rank(singular, factorize.Selection(energy=1.0)) == 3
    plan = factorize.plan_layer("l", 4, 4, True, singular, factorize.Selection(rank=2))
    assert plan.skipped == "rank 2 would need 20 parameters, not fewer than the 20 it has"
    assert plan.parameters_after == plan.parameters_before == 20
    plan = factorize.plan_layer("l", 4, 4, True, singular, factorize.Selection(rank=1))
    assert (plan.skipped, plan.parameters_after) == (None, 12)
    assert plan.energy == pytest.approx(9 / 14)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpha": 1.01}, "--alpha must be between 0 and 1"),
        ({"temperature": 0.0}, "--temperature must be greater than 0"),
        ({"epochs": 0}, "--epochs must be greater than 0"),
        ({"batch_size": -1}, "--batch-size must be greater than 0"),
        ({"lr": 0.0}, "--lr must be greater than 0"),
        ({"threads": 0}, "--threads must be greater than 0"),
    ],
)
def test_settings_are_checked(change: dict[str, Any], message: str) -> None:
    settings = dataclasses.replace(distill.Settings(alpha=0.5), **change)
    with pytest.raises(ModelToolError, match=message):
        distill.check_settings(settings)


def test_alpha_defaults_by_labels_and_needs_them_above_zero() -> None:
    assert distill.resolve_alpha(None, True, Path("d.npz")) == 0.5
    assert distill.resolve_alpha(None, False, Path("d.npz")) == 0.0
    assert distill.resolve_alpha(0.0, False, Path("d.npz")) == 0.0
    with pytest.raises(ModelToolError, match=r"--alpha 0.2 weights a loss on labels, but d.npz"):
        distill.resolve_alpha(0.2, False, Path("d.npz"))


def test_batches_cover_every_row_and_never_end_with_one() -> None:
    assert [len(b) for b in distill.batches(np.arange(9), 4)] == [4, 5]
    assert [len(b) for b in distill.batches(np.arange(8), 4)] == [4, 4]
    assert [len(b) for b in distill.batches(np.arange(1), 4)] == [1]


def test_latency_runs_are_interleaved_in_alternating_order() -> None:
    calls: list[str] = []
    times = measure.interleaved_times_ms(
        [lambda: calls.append("a"), lambda: calls.append("b")], runs=3
    )
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then a b / b a / a b
    assert [len(t) for t in times] == [3, 3]

"""How far two models' outputs agree, and how well logits fit labels: pure numpy, shared by the
quantize, prune, distill and factorize reports.

Logits have classes (or vocabulary entries) on the last axis; every leading axis (rows, and
sequence positions for a language model) counts as one prediction. No I/O, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top1_agreement(before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> float | None:
    """Share of rows whose argmax over the last axis (class or token logits) is unchanged."""
    if before[0].ndim < 2 or before[0].shape[-1] < 2:
        return None
    return float(np.mean(np.argmax(before[0], -1) == np.argmax(after[0], -1)))


def agreement_text(top1: float | None) -> str:
    return f", top-1 agreement {top1:.1%}" if top1 is not None else ""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Natural-log softmax over the last axis, in float64."""
    wide = logits.astype(np.float64)
    shifted = wide - wide.max(axis=-1, keepdims=True)
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return result


def mean_kl(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean KL(P_reference || P_candidate) in nats at temperature 1, over every prediction."""
    log_p, log_q = log_softmax(reference), log_softmax(candidate)
    return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of predictions whose argmax is the label (labels: the logits' leading axes)."""
    return float(np.mean(np.argmax(logits, -1) == labels))


def perplexity(logits: np.ndarray, targets: np.ndarray) -> float:
    """exp of the mean negative log-likelihood of ``targets`` (the logits' leading axes)."""
    log_p = log_softmax(logits)
    picked = np.take_along_axis(log_p, targets[..., None].astype(np.int64), axis=-1)
    return float(np.exp(-np.mean(picked)))


def next_token_targets(
    feeds: Sequence[np.ndarray], logits_shape: Sequence[int], labels: np.ndarray | None
) -> tuple[slice, np.ndarray] | None:
    """What a language model's perplexity is measured against, or None for other models.

    A model is taken for a language model when its logits are ``(rows, positions, vocabulary)``.
    With labels of shape ``(rows, positions)`` those are the targets at every position. Without
    labels, and with one integer input ``(rows, positions)``, the targets are that input shifted
    by one: position ``t`` predicts token ``t + 1``, and the last position (no target) is left
    out. Returns the positions of the logits to score and the targets.
    """
    if len(logits_shape) != 3:
        return None
    if labels is not None:
        return (slice(None), labels) if labels.ndim == 2 else None
    if len(feeds) != 1 or feeds[0].ndim != 2 or feeds[0].dtype.kind not in "iu":
        return None
    tokens = feeds[0]
    if tokens.shape[1] != logits_shape[1] or tokens.shape[1] < 2:
        return None
    if tokens.min() < 0 or tokens.max() >= logits_shape[2]:
        return None
    return slice(0, -1), tokens[:, 1:]

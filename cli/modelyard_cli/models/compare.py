"""How far two models' outputs agree: shared by quantize and prune reports."""

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

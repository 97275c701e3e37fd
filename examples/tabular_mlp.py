"""A tabular MLP: 16 features -> 3 class logits. `modelyard export examples.tabular_mlp:build`.

``build_student`` is a 9x smaller MLP for `modelyard distill`; ``synthetic_data`` draws a
labelled data set from a fixed nonlinear rule, to train a teacher on and distil with.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

INPUTS = ("features:1x16",)
OUTPUTS = ("logits",)
FEATURES, CLASSES = 16, 3


def build(hidden: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, CLASSES),
    )  # fmt: skip


def build_student() -> nn.Module:
    """Two hidden layers of 16: 595 parameters against the teacher's 5,443."""
    return build(hidden=16)


def sample_inputs(batch: int = 32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {"features": torch.randn(batch, FEATURES, generator=generator)}


def synthetic_data(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``features`` (rows x 16, standard normal) and ``labels``: the argmax of a fixed random
    two-layer tanh network of the features (the rule is the same for every seed)."""
    rule = np.random.default_rng(1234)
    first, second = rule.standard_normal((FEATURES, 8)), rule.standard_normal((8, CLASSES))
    features = np.random.default_rng(seed).standard_normal((rows, FEATURES)).astype(np.float32)
    labels = np.argmax(np.tanh(features @ first) @ second, axis=1).astype(np.int64)
    return {"features": features, "labels": labels}

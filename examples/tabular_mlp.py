"""A tabular MLP: 16 features -> 3 class logits. `modelyard export examples.tabular_mlp:build`."""

from __future__ import annotations

import torch
from torch import nn

INPUTS = ("features:1x16",)
OUTPUTS = ("logits",)


def build() -> nn.Module:
    return nn.Sequential(
        nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3)
    )


def sample_inputs(batch: int = 32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {"features": torch.randn(batch, 16, generator=generator)}

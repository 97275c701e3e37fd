"""A small CNN image classifier: 3x32x32 images -> 10 class logits."""

from __future__ import annotations

import torch
from torch import nn

INPUTS = ("image:1x3x32x32",)
OUTPUTS = ("logits",)


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(image))
        return logits


def build() -> nn.Module:
    return SmallCNN()


def sample_inputs(batch: int = 16) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {"image": torch.randn(batch, 3, 32, 32, generator=generator)}

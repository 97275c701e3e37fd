"""A small CNN image classifier: 3x32x32 images -> 10 class logits.

``build_student`` halves every width for `modelyard distill`; ``synthetic_data`` draws labelled
images (a class-specific smooth pattern under noise) to train a teacher on and distil with.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

INPUTS = ("image:1x3x32x32",)
OUTPUTS = ("logits",)


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10, widths: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        first, second = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, first, 3, padding=1), nn.BatchNorm2d(first), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(first, second, 3, padding=1), nn.BatchNorm2d(second), nn.ReLU(),
            nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(second, classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(image))
        return logits


def build() -> nn.Module:
    return SmallCNN()


def build_student() -> nn.Module:
    """Widths 8 and 16 instead of 16 and 32."""
    return SmallCNN(widths=(8, 16))


def sample_inputs(batch: int = 16) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {"image": torch.randn(batch, 3, 32, 32, generator=generator)}


def synthetic_data(rows: int, seed: int = 0, classes: int = 10) -> dict[str, np.ndarray]:
    """``image`` (rows x 3 x 32 x 32) and ``labels``: each class has a fixed smooth pattern
    (a random 3x4x4 grid scaled up to 32x32), shown at a random strength under unit noise."""
    patterns = np.random.default_rng(1234).standard_normal((classes, 3, 4, 4))
    patterns = patterns.repeat(8, axis=2).repeat(8, axis=3)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=rows)
    strength = rng.uniform(0.3, 1.0, size=(rows, 1, 1, 1))
    images = patterns[labels] * strength + rng.standard_normal((rows, 3, 32, 32))
    return {"image": images.astype(np.float32), "labels": labels.astype(np.int64)}

"""``modelyard prune``: global magnitude pruning of a PyTorch module, made permanent.

Prunes the smallest ``amount`` of all Linear and Conv weights together
(``torch.nn.utils.prune.global_unstructured`` with L1), removes the re-parametrisation so the
zeros are plain weights, saves the state dict, and reports the sparsity reached and how far the
pruned module's outputs moved on seeded random inputs. Export the result with
``modelyard export``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelyard_cli.models.compare import agreement_text, top1_agreement
from modelyard_cli.models.export import InputSpec, run_torch, save_checkpoint
from modelyard_cli.models.onnx_model import ModelToolError, need


@dataclasses.dataclass(frozen=True, slots=True)
class PruneReport:
    amount: float
    sparsity: float
    max_abs_change: float
    top1_agreement: float | None

    def lines(self) -> list[str]:
        agreement = agreement_text(self.top1_agreement)
        return [
            f"pruned {self.amount:.0%} of Linear/Conv weights by magnitude: "
            f"weight sparsity now {self.sparsity:.1%}",
            f"output change on random inputs: max |diff| {self.max_abs_change:.3g}" + agreement,
        ]


def prunable(module: Any) -> list[tuple[Any, str]]:
    torch = need("torch")
    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    return [(m, "weight") for m in module.modules() if isinstance(m, kinds)]


def prune_module(
    module: Any, *, amount: float, inputs: Sequence[InputSpec], out: Path, token_high: int
) -> PruneReport:
    prune = need("torch.nn.utils.prune")
    if not 0 < amount < 1:
        raise ModelToolError("--amount must be between 0 and 1 (the share of weights to zero)")
    targets = prunable(module)
    if not targets:
        raise ModelToolError("the module has no Linear or Conv layers to prune")
    rng = np.random.default_rng(2)
    feeds = [spec.sample(rng, 64, token_high) for spec in inputs]
    before = run_torch(module, feeds)
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for layer, name in targets:
        prune.remove(layer, name)  # permanent: the mask is folded into the weight
    after = run_torch(module, feeds)
    zeros = sum(int((layer.weight == 0).sum()) for layer, _ in targets)
    total = sum(layer.weight.numel() for layer, _ in targets)
    top1 = top1_agreement(before, after)
    save_checkpoint(module, out)
    return PruneReport(
        amount=amount,
        sparsity=zeros / total,
        max_abs_change=max(float(np.abs(a - b).max()) for a, b in zip(before, after, strict=True)),
        top1_agreement=top1,
    )

"""``modelyard factorize``: replace Linear layers with pairs of low-rank Linear layers (SVD).

For a weight ``W`` (out x in) with SVD ``U S V^T``, rank ``r`` keeps the ``r`` largest singular
values: ``W ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T)``. The layer becomes ``Linear(in, r, bias=False)``
(weight ``sqrt(S_r) V_r^T``) followed by ``Linear(r, out)`` (weight ``U_r sqrt(S_r)``, the old
bias); see ``lowrank`` for the structure and how checkpoints carry it. The rank is ``--rank R``
(at most ``min(in, out)``) or, with ``--energy E``, the smallest whose singular values hold at
least ``E`` of the sum of squared singular values (the squared Frobenius norm). A layer is left
alone when ``min(in, out) < --min-features`` or when the pair would not be smaller
(``r * (in + out) >= in * out``); the report says which and why. Only layers of exactly type
``nn.Linear`` are considered; Conv layers and Linear subclasses are left as they are.

Writes the checkpoint (loadable by ``export``, ``prune`` and ``distill`` with the unchanged
factory), optionally exports it (``--out-onnx``, with export's parity check), and reports size,
latency and agreement with the original model on ``--data`` or seeded random inputs.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelyard_cli.models import dataset, export, lowrank
from modelyard_cli.models.measure import Comparison, compare_models
from modelyard_cli.models.onnx_model import ModelToolError, need


@dataclasses.dataclass(frozen=True, slots=True)
class LayerPlan:
    """One Linear layer: the rank chosen, the energy it keeps, and whether it was replaced."""

    name: str
    in_features: int
    out_features: int
    rank: int
    energy: float
    parameters_before: int
    parameters_after: int
    skipped: str | None  # why the layer was left as it is; None: factorised

    def line(self) -> str:
        shape = f"{self.name} ({self.in_features} -> {self.out_features})"
        if self.skipped:
            return f"{shape}: left as it is, {self.skipped}"
        return (f"{shape}: rank {self.rank}, keeps {self.energy:.1%} of the energy, "
                f"{self.parameters_before:,} -> {self.parameters_after:,} parameters")  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Selection:
    """How layers are chosen: exactly one of ``rank`` and ``energy``."""

    rank: int | None = None
    energy: float | None = None
    min_features: int = 0

    def check(self) -> None:
        if (self.rank is None) == (self.energy is None):
            raise ModelToolError("give exactly one of --rank and --energy")
        if self.rank is not None and self.rank < 1:
            raise ModelToolError(f"--rank must be at least 1, got {self.rank}")
        if self.energy is not None and not 0 < self.energy <= 1:
            raise ModelToolError(f"--energy must be in (0, 1], got {self.energy}")
        if self.min_features < 0:
            raise ModelToolError(f"--min-features must be 0 or more, got {self.min_features}")


@dataclasses.dataclass(frozen=True, slots=True)
class FactorizeReport:
    target: str
    layers: list[LayerPlan]
    comparison: Comparison
    parity_max_abs: float | None  # onnxruntime vs torch, when --out-onnx was written

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return data | {
            "layers": [dataclasses.asdict(p) for p in self.layers],
            "comparison": self.comparison.as_dict(),
        }

    def lines(self) -> list[str]:
        done = sum(p.skipped is None for p in self.layers)
        return [
            f"factorised {done} of {len(self.layers)} Linear layers of {self.target}:",
            *(f"  {p.line()}" for p in self.layers),
            *self.comparison.lines("original", "factorised"),
        ]


def kept_energy(singular: np.ndarray, rank: int) -> float:
    squares = singular.astype(np.float64) ** 2
    return float(squares[:rank].sum() / squares.sum()) if squares.sum() > 0 else 1.0


def choose_rank(singular: np.ndarray, selection: Selection) -> int:
    """``--rank`` capped at the number of singular values, or the smallest rank keeping
    ``--energy`` of the squared singular values (``singular`` sorted, largest first)."""
    if selection.rank is not None:
        return min(selection.rank, len(singular))
    squares = singular.astype(np.float64) ** 2
    if squares.sum() == 0:
        return 1
    share = np.cumsum(squares) / squares.sum()
    target = (selection.energy or 1.0) - 1e-12  # float round-off must not push 1.0 past rank
    return min(int(np.searchsorted(share, target)) + 1, len(singular))


def plan_layer(
    name: str, in_features: int, out_features: int, bias: bool, singular: np.ndarray,
    selection: Selection,
) -> LayerPlan:  # fmt: skip
    before = in_features * out_features + (out_features if bias else 0)
    rank = choose_rank(singular, selection)
    after = rank * (in_features + out_features) + (out_features if bias else 0)
    skipped = None
    if min(in_features, out_features) < selection.min_features:
        skipped = f"smaller than --min-features {selection.min_features}"
    elif after >= before:
        skipped = (f"rank {rank} would need {after:,} parameters, not fewer than the "
                   f"{before:,} it has")  # fmt: skip
    energy = kept_energy(singular, rank)
    return LayerPlan(name, in_features, out_features, rank, energy, before,
                     before if skipped else after, skipped)  # fmt: skip


def factorize_module(module: Any, selection: Selection) -> list[LayerPlan]:
    """Plan every Linear layer of ``module`` and replace those worth it, in place."""
    torch = need("torch")
    selection.check()
    plans = []
    # Exactly nn.Linear: subclasses (nn.MultiheadAttention's out_proj) are read through
    # ``.weight`` by their parent, which a low-rank pair does not have.
    linears = [(n, m) for n, m in module.named_modules() if type(m) is torch.nn.Linear]
    for name, layer in linears:
        with torch.no_grad():
            u, s, vh = torch.linalg.svd(layer.weight.double(), full_matrices=False)
        plan = plan_layer(name, layer.in_features, layer.out_features, layer.bias is not None,
                          s.numpy(), selection)  # fmt: skip
        plans.append(plan)
        if plan.skipped is None:
            pair = lowrank.low_rank_pair(layer, plan.rank)
            root = s[: plan.rank].sqrt()
            with torch.no_grad():
                pair[0].weight.copy_(root[:, None] * vh[: plan.rank])
                pair[1].weight.copy_(u[:, : plan.rank] * root[None, :])
                if layer.bias is not None:
                    pair[1].bias.copy_(layer.bias)
            lowrank.replace_layer(module, name, pair)
            lowrank.record_ranks(module, {name: plan.rank})
    return plans


def factorize(
    target: str,
    checkpoint: Path | None,
    inputs: Sequence[export.InputSpec],
    selection: Selection,
    *,
    out: Path,
    out_onnx: Path | None = None,
    output_names: Sequence[str] = ("output",),
    data: Path | None = None,
    labels: str | None = None,
    seed: int = 0,
    threads: int = 1,
    token_high: int = 16,
) -> FactorizeReport:
    selection.check()
    if threads < 1:
        raise ModelToolError(f"--threads must be greater than 0, got {threads}")
    torch = need("torch")
    torch.set_num_threads(threads)
    original = export.build_module(target, checkpoint)
    feeds, truth = _evaluation(inputs, data, labels, seed, token_high)
    with tempfile.TemporaryDirectory(prefix="modelyard-factorize-") as tmp:
        before = Path(tmp) / "original.onnx"
        export.export_onnx(original, inputs, before, output_names=output_names, opset=17,
                           token_high=token_high)  # fmt: skip
        module = export.build_module(target, checkpoint)
        plans = factorize_module(module, selection)
        if all(p.skipped for p in plans):
            why = "; ".join(p.line() for p in plans) or "it has no Linear layers"
            raise ModelToolError(f"no layer of {target} was factorised: {why}")
        export.save_checkpoint(module, out)
        after = out_onnx or Path(tmp) / "factorised.onnx"
        export.export_onnx(module, inputs, after, output_names=output_names, opset=17,
                           token_high=token_high)  # fmt: skip
        parity = export.parity(
            module, after, inputs, samples=[[v[:8] for v in feeds.values()]],
            rtol=1e-3, atol=1e-4, token_high=token_high,
        )  # fmt: skip
        comparison = compare_models(
            before, after, feeds=feeds, labels=truth, threads=threads,
            parameters=(sum(int(p.numel()) for p in original.parameters()),
                        sum(int(p.numel()) for p in module.parameters())),
        )  # fmt: skip
    return FactorizeReport(target, plans, comparison, parity.max_abs if out_onnx else None)


def _evaluation(
    inputs: Sequence[export.InputSpec], data: Path | None, labels: str | None, seed: int,
    token_high: int,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:  # fmt: skip
    """``--data`` checked against the inputs, or 256 seeded random rows."""
    if data is not None:
        loaded = dataset.load_data_set(
            data, [dataset.Expected.from_spec(s) for s in inputs], labels=labels
        )
        return loaded.inputs, loaded.labels
    rng = np.random.default_rng(seed)
    return {s.name: s.sample(rng, 256, token_high) for s in inputs}, None

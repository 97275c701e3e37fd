"""Low-rank Linear layers: the structure ``factorize`` writes, rebuilt by every checkpoint loader.

A factorised ``nn.Linear(in, out)`` named ``NAME`` becomes, under the same name,
``nn.Sequential(nn.Linear(in, r, bias=False), nn.Linear(r, out))``: its state-dict keys are
``NAME.0.weight``, ``NAME.1.weight`` and ``NAME.1.bias``. A checkpoint of such a module is
``{"state_dict": ..., "low_rank": {NAME: r, ...}}``. ``apply_ranks`` rebuilds that structure in
the module the user's own factory built, so ``export``, ``prune`` and ``distill`` load a
factorised checkpoint with the unchanged ``MODULE:FACTORY``; ``checkpoint_payload`` is what they
save, so the structure survives every step. torch is imported lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from modelyard_cli.models.onnx_model import ModelToolError, need

LAYOUT_KEY: Final = "low_rank"
_ATTRIBUTE: Final = "_modelyard_low_rank"  # the ranks applied to a module, kept on the module


def low_rank_pair(linear: Any, rank: int) -> Any:
    """An untrained ``Sequential(Linear(in, rank, bias=False), Linear(rank, out))`` in the
    place of ``linear``, with its dtype and device."""
    torch = need("torch")
    kind = {"dtype": linear.weight.dtype, "device": linear.weight.device}
    return torch.nn.Sequential(
        torch.nn.Linear(linear.in_features, rank, bias=False, **kind),
        torch.nn.Linear(rank, linear.out_features, bias=linear.bias is not None, **kind),
    )


def replace_layer(module: Any, name: str, layer: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(module.get_submodule(parent_name) if parent_name else module, child, layer)


def ranks_of(module: Any) -> dict[str, int]:
    """The layers of ``module`` that are factorised, and their ranks."""
    return dict(getattr(module, _ATTRIBUTE, {}))


def record_ranks(module: Any, ranks: Mapping[str, int]) -> None:
    object.__setattr__(module, _ATTRIBUTE, ranks_of(module) | dict(ranks))


def apply_ranks(module: Any, ranks: object, source: str) -> None:
    """Replace each named ``nn.Linear`` with an (untrained) low-rank pair of that rank."""
    torch = need("torch")
    if not isinstance(ranks, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in ranks.items()
    ):
        raise ModelToolError(f"{source}: {LAYOUT_KEY!r} must map layer names to positive ranks")
    for name, rank in sorted(ranks.items()):
        try:
            layer = module.get_submodule(name)
        except AttributeError as e:
            raise ModelToolError(
                f"{source} factorises layer {name!r}, which this module does not have"
            ) from e
        if not isinstance(layer, torch.nn.Linear):
            raise ModelToolError(
                f"{source} factorises layer {name!r}, which is a {type(layer).__name__} in this "
                "module, not a Linear: was it made from another factory?"
            )
        replace_layer(module, name, low_rank_pair(layer, rank))
    record_ranks(module, ranks)


def checkpoint_payload(module: Any) -> dict[str, Any]:
    """What to ``torch.save``: the plain state dict, or for a factorised module the state dict
    and its ranks."""
    ranks = ranks_of(module)
    state: dict[str, Any] = module.state_dict()
    return {"state_dict": state, LAYOUT_KEY: ranks} if ranks else state

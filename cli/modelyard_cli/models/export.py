"""``modelyard export``: a PyTorch module to a checked ONNX file, with a parity check.

Builds the module from ``MODULE:FACTORY``, loads the checkpoint's state dict (naming missing and
unexpected keys; the low-rank layers of a factorised checkpoint are rebuilt first), exports with
a dynamic batch axis and a fixed opset, lowers the IR version to one the pinned onnxruntime
reads, runs ``onnx.checker``, then compares onnxruntime with torch on random inputs (at two
batch sizes, so the dynamic axis is proven) and on the user's own inputs. Every failure is a
``ModelToolError`` with a message for people. torch is imported lazily.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from modelyard_cli.models import lowrank
from modelyard_cli.models.onnx_model import ModelToolError, check_and_pin_ir, need

DEFAULT_OPSET: Final = 17
DTYPES: Final = ("float32", "float16", "int64", "int32", "bool")
_SHAPE: Final = re.compile(r"^[0-9]+(x[0-9]+)*$")


@dataclasses.dataclass(frozen=True, slots=True)
class InputSpec:
    """``name:2x3x32x32[:dtype]``; the first axis is the batch axis and becomes dynamic."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    @classmethod
    def parse(cls, text: str, position: int = 0) -> InputSpec:
        """``NAME:SHAPE[:DTYPE]``, or ``SHAPE[:DTYPE]`` named ``input`` (``input_1``, ...)."""
        parts = text.split(":")
        if parts and _SHAPE.match(parts[0]):
            parts.insert(0, "input" if position == 0 else f"input_{position}")
        if len(parts) not in (2, 3) or not parts[0]:
            raise ModelToolError(f"--input {text!r}: expected NAME:SHAPE[:DTYPE], e.g. x:1x16")
        try:
            shape = tuple(int(d) for d in parts[1].lower().split("x"))
        except ValueError as e:
            raise ModelToolError(f"--input {text!r}: shape must be like 1x3x32x32") from e
        if not shape or any(d < 1 for d in shape):
            raise ModelToolError(f"--input {text!r}: every dimension must be positive")
        dtype = parts[2] if len(parts) == 3 else "float32"
        if dtype not in DTYPES:
            raise ModelToolError(f"--input {text!r}: dtype must be one of {', '.join(DTYPES)}")
        return cls(parts[0], shape, dtype)

    def sample(self, rng: np.random.Generator, batch: int, high: int) -> np.ndarray:
        shape = (batch, *self.shape[1:])
        if self.dtype in ("int64", "int32"):
            return rng.integers(0, high, size=shape).astype(self.dtype)
        if self.dtype == "bool":
            return rng.integers(0, 2, size=shape).astype(bool)
        return rng.standard_normal(shape).astype(self.dtype)


@dataclasses.dataclass(frozen=True, slots=True)
class Parity:
    """The worst disagreement between onnxruntime and torch over every compared input."""

    cases: int
    max_abs: float
    output: str
    index: tuple[int, ...]
    onnx_value: float
    torch_value: float


def load_factory(target: str) -> Callable[[], Any]:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ModelToolError(f"{target!r}: expected MODULE:FACTORY, e.g. examples.mlp:build")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # MODULE is looked up from the working directory, like python -m
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ModelToolError(f"cannot import {module_name!r}: {type(e).__name__}: {e}") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelToolError(f"{module_name!r} has no callable {attr!r}")
    return factory  # type: ignore[no-any-return]


def build_module(target: str, checkpoint: Path | None) -> Any:
    torch = need("torch")
    try:
        module = load_factory(target)()
    except ModelToolError:
        raise
    except Exception as e:
        raise ModelToolError(f"{target}() failed: {type(e).__name__}: {e}") from e
    if not isinstance(module, torch.nn.Module):
        raise ModelToolError(f"{target}() returned {type(module).__name__}, not a torch.nn.Module")
    if checkpoint is not None:
        load_checkpoint(module, checkpoint)
    return module.eval()


def load_checkpoint(module: Any, checkpoint: Path) -> None:
    torch = need("torch")
    try:
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelToolError(f"cannot read checkpoint {checkpoint}: {e}") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        if lowrank.LAYOUT_KEY in state:
            lowrank.apply_ranks(module, state[lowrank.LAYOUT_KEY], str(checkpoint))
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelToolError(f"{checkpoint} does not hold a state dict")
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelToolError(
            f"checkpoint {checkpoint} does not match the module: "
            f"missing keys {missing or 'none'}; unexpected keys {unexpected or 'none'}"
        )
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)}, module {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise ModelToolError(f"checkpoint {checkpoint} has tensors of the wrong shape: {wrong}")
    module.load_state_dict(state)


def save_checkpoint(module: Any, path: Path) -> None:
    """The module's state dict (with its low-rank layout, if factorised) for ``load_checkpoint``."""
    torch = need("torch")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.save(lowrank.checkpoint_payload(module), str(path))
    except OSError as e:
        raise ModelToolError(f"cannot write checkpoint {path}: {e}") from e


def run_torch(module: Any, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
    torch = need("torch")
    with torch.no_grad():
        result = module(*[torch.from_numpy(np.ascontiguousarray(f)) for f in feeds])
    outputs = result if isinstance(result, tuple | list) else (result,)
    return [o.detach().cpu().numpy() for o in outputs]


def export_onnx(
    module: Any,
    inputs: Sequence[InputSpec],
    out: Path,
    *,
    output_names: Sequence[str],
    opset: int,
    token_high: int,
    dynamic_axes: Sequence[str] = (),
) -> None:
    torch = need("torch")
    need("onnx")
    rng = np.random.default_rng(0)
    example = [spec.sample(rng, spec.shape[0], token_high) for spec in inputs]
    try:
        run_torch(module, example)
    except Exception as e:
        shapes = ", ".join(f"{s.name} {'x'.join(map(str, s.shape))}" for s in inputs)
        raise ModelToolError(f"the module rejected inputs of shape {shapes}: {e}") from e
    names = [spec.name for spec in inputs]
    dynamic = dynamic_axes_for([*names, *output_names], dynamic_axes)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is chosen on purpose (dynamo=False); torch warns that it
            # is deprecated on every call, which in-process callers need not hear.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                tuple(torch.from_numpy(e) for e in example),
                str(out),
                input_names=names,
                output_names=list(output_names),
                dynamic_axes=dynamic,
                opset_version=opset,
                dynamo=False,
            )
    except Exception as e:
        raise ModelToolError(f"torch.onnx.export failed: {type(e).__name__}: {e}") from e
    check_and_pin_ir(out)


def dynamic_axes_for(names: Sequence[str], extra: Sequence[str]) -> dict[str, dict[int, str]]:
    """Axis 0 of every input and output is ``batch``; ``NAME:AXIS[:LABEL]`` adds more."""
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in names}
    for text in extra:
        parts = text.split(":")
        if len(parts) not in (2, 3) or parts[0] not in axes or not parts[1].isdigit():
            raise ModelToolError(
                f"--dynamic {text!r}: expected NAME:AXIS[:LABEL] with NAME one of {list(names)}"
            )
        axis = int(parts[1])
        axes[parts[0]][axis] = parts[2] if len(parts) == 3 else f"{parts[0]}_{axis}"
    return axes


def ort_session(path: Path, threads: int | None = None) -> Any:
    """A CPU session; ``threads`` fixes the intra-op threads (and one inter-op thread)."""
    ort = need("onnxruntime", "runtime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelToolError(f"onnxruntime cannot load {path}: {type(e).__name__}: {e}") from e


def parity(
    module: Any,
    path: Path,
    inputs: Sequence[InputSpec],
    *,
    samples: Sequence[Sequence[np.ndarray]] = (),
    rtol: float,
    atol: float,
    token_high: int,
) -> Parity:
    """Compare onnxruntime with torch; ``ModelToolError`` names the worst element if off."""
    session = ort_session(path)
    names = [o.name for o in session.get_outputs()]
    rng = np.random.default_rng(1)
    cases = [[s.sample(rng, batch, token_high) for s in inputs] for batch in (1, 3)]
    cases += [list(sample) for sample in samples]
    worst = Parity(len(cases), 0.0, names[0], (), 0.0, 0.0)
    for feeds in cases:
        expected = run_torch(module, feeds)
        got = session.run(None, {s.name: f for s, f in zip(inputs, feeds, strict=True)})
        for name, ours, theirs in zip(names, got, expected, strict=True):
            ours64, theirs64 = ours.astype(np.float64), theirs.astype(np.float64)
            diff = np.abs(ours64 - theirs64)
            index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
            if diff.size and float(diff[index]) >= worst.max_abs:
                worst = Parity(
                    len(cases), float(diff[index]), name, index,
                    float(ours64[index]), float(theirs64[index]),
                )  # fmt: skip
            if not np.allclose(ours64, theirs64, rtol=rtol, atol=atol):
                raise ModelToolError(
                    f"parity check failed: output {name!r} differs by up to "
                    f"{float(diff[index]):.3g} at {list(index)} (onnxruntime "
                    f"{float(ours64[index]):.6g}, torch {float(theirs64[index]):.6g}); "
                    f"tolerance rtol={rtol} atol={atol}"
                )
    return worst


def load_samples(path: Path, inputs: Sequence[InputSpec]) -> list[list[np.ndarray]]:
    """An .npz with one array per input name (first axis: batch)."""
    try:
        data = np.load(path)
    except Exception as e:
        raise ModelToolError(f"cannot read sample inputs {path}: {e}") from e
    missing = [s.name for s in inputs if s.name not in data]
    if missing:
        raise ModelToolError(f"{path} has no array for inputs {missing}")
    return [[np.asarray(data[s.name]).astype(s.dtype) for s in inputs]]

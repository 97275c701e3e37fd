"""``modelyard``: the user CLI: model files (export, quantize, prune, distill, factorize, digest,
inspect; keygen, sign, verify, encrypt) and rollouts
(``rollout status|promote|abort|pause|resume|retry|history``; also installed as
``kubectl-modelyard``, so ``kubectl modelyard rollout status NAME`` works).

Each command prints what it did, exits 0 on success and 1 with one ``modelyard <cmd>: error:``
line on failure (never a bare traceback); 2 is a usage error, 130 an interrupted command (Ctrl-C).
torch, onnx, onnxconverter-common and rich come with the ``export`` extra and are imported only by
the commands that need them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelyard_cli.errors import CliError, ModelToolError
from modelyard_cli.models import trust
from modelyard_cli.models.onnx_model import describe, manifest, need
from modelyard_cli.rollout import commands as rollout_commands
from modelyard_runtime.contract.gpu import BY_SHORT_NAME, gpu_present


def _export(args: argparse.Namespace) -> None:
    from modelyard_cli.models import export

    inputs = [export.InputSpec.parse(text, i) for i, text in enumerate(args.input)]
    outputs = args.output_name or ["output"]
    module = export.build_module(args.target, args.checkpoint)
    export.export_onnx(
        module, inputs, args.out, output_names=outputs, opset=args.opset,
        token_high=args.token_high, dynamic_axes=args.dynamic or (),
    )  # fmt: skip
    samples = export.load_samples(args.sample_inputs, inputs) if args.sample_inputs else []
    worst = export.parity(
        module, args.out, inputs, samples=samples, rtol=args.rtol, atol=args.atol,
        token_high=args.token_high,
    )  # fmt: skip
    info = describe(args.out)
    print(f"exported {args.target} to {args.out} (opset {args.opset}, IR {info['ir_version']})")
    print(
        f"parity: onnxruntime vs torch on {worst.cases} input sets, max |diff| "
        f"{worst.max_abs:.3g} (output {worst.output!r}), within rtol={args.rtol} atol={args.atol}"
    )


def _quantize(args: argparse.Namespace) -> None:
    from modelyard_cli.models.quantize import quantize

    out = args.out or args.model.with_name(f"{args.model.stem}.{args.mode}.onnx")
    report = quantize(args.model, out, mode=args.mode, calibration=args.calibration)
    _print_report(out, report.lines(), args.report, dataclasses.asdict(report))


def _prune(args: argparse.Namespace) -> None:
    from modelyard_cli.models import export
    from modelyard_cli.models.prune import prune_module

    inputs = [export.InputSpec.parse(text, i) for i, text in enumerate(args.input)]
    module = export.build_module(args.target, args.checkpoint)
    report = prune_module(
        module, amount=args.amount, inputs=inputs, out=args.out, token_high=args.token_high
    )
    print(f"wrote {args.out}")
    for line in report.lines():
        print(f"  {line}")


def _distill(args: argparse.Namespace) -> None:
    from modelyard_cli.models import distill
    from modelyard_cli.models.progress import RichProgress

    sources = distill.Sources(
        teacher=args.teacher, student=args.student, data=args.data,
        teacher_checkpoint=args.teacher_checkpoint, student_checkpoint=args.student_checkpoint,
        eval_data=args.eval_data, labels=args.labels, inputs=args.input or (),
        output_names=args.output_name or (), token_high=args.token_high,
    )  # fmt: skip
    settings = distill.Settings(
        alpha=args.alpha, temperature=args.temperature, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, holdout=args.holdout,
        threads=args.threads,
    )  # fmt: skip
    distill.check_settings(settings)  # before the progress bar, so a bad number is one line
    with RichProgress("distilling") as progress:
        report = distill.distill(sources, settings, args.out, progress)
    _print_report(args.out, report.lines(), args.report, report.as_dict())


def _factorize(args: argparse.Namespace) -> None:
    from modelyard_cli.models import export, factorize

    inputs = [export.InputSpec.parse(text, i) for i, text in enumerate(args.input)]
    selection = factorize.Selection(args.rank, args.energy, args.min_features)
    report = factorize.factorize(
        args.target, args.checkpoint, inputs, selection, out=args.out, out_onnx=args.out_onnx,
        output_names=args.output_name or ["output"], data=args.data, labels=args.labels,
        seed=args.seed, threads=args.threads, token_high=args.token_high,
    )  # fmt: skip
    _print_report(args.out, report.lines(), args.report, report.as_dict())
    if args.out_onnx:
        print(f"exported to {args.out_onnx} (parity with torch: max |diff| "
              f"{report.parity_max_abs:.3g})")  # fmt: skip


def _print_report(out: Path, lines: list[str], target: Path | None, data: dict[str, Any]) -> None:
    """``wrote OUT``, the report's lines, and with ``--report`` the report as JSON."""
    print(f"wrote {out}")
    for line in lines:
        print(f"  {line}")
    if target:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(data | {"out": str(out)}, indent=2) + "\n")
        except OSError as e:
            raise ModelToolError(f"cannot write the report {target}: {e}") from e


def _digest(args: argparse.Namespace) -> None:
    data = manifest(args.model, name=args.name or args.model.stem, version=args.version)
    target = args.manifest or args.model.with_suffix(".manifest.json")
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(data["sha256"])
    print(f"manifest: {target}", file=sys.stderr)


def _inspect(args: argparse.Namespace) -> None:
    info = describe(args.model)
    warnings = provider_warnings(args.model, args.provider)
    if args.json:
        print(json.dumps(info | {"warnings": warnings}, indent=2, sort_keys=True))
        return
    print(f"{args.model}: {info['size_bytes'] / 1e6:.3f} MB, IR {info['ir_version']}, "
          f"opsets {info['opsets']}, producer {info['producer'] or 'unknown'}")  # fmt: skip
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            print(f"  {kind[:-1]:6} {t['name']}: {t['datatype']} {t['shape']}")
    ops = ", ".join(f"{op} x{n}" for op, n in info["operators"].items())
    print(f"  operators: {ops}")
    for warning in warnings:
        print(f"  warning: {warning}")


def provider_warnings(path: Path, provider: str) -> list[str]:
    """What keeps the model from running wholly on ``provider`` (cpu, cuda, tensorrt)."""
    ort = need("onnxruntime", "runtime")
    wanted = BY_SHORT_NAME[provider]
    usable = wanted in ort.get_available_providers() and (provider == "cpu" or gpu_present())
    if not usable:
        return [f"{wanted} is not available on this machine, so operator support on "
                f"{provider} cannot be checked here"]  # fmt: skip
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if provider != "cpu":
        # Refuse to fall back: session creation then names the first node the provider lacks.
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        ort.InferenceSession(str(path), options, providers=[wanted])
    except Exception as e:
        return [f"{provider} cannot run the whole model: {e}"]
    return []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelyard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("export", help="PyTorch module -> checked ONNX with a parity check")
    p.add_argument("target", help="MODULE:FACTORY, a function that returns the torch.nn.Module")
    p.add_argument("--checkpoint", type=Path, help="state dict saved with torch.save")
    p.add_argument("--input", "--input-shape", action="append", required=True,
                   help="[NAME:]SHAPE[:DTYPE], e.g. x:1x3x32x32, tokens:1x16:int64 or 1x16; "
                        "repeat per input; axis 0 becomes a dynamic batch axis")  # fmt: skip
    p.add_argument("--dynamic", action="append",
                   help="another dynamic axis, NAME:AXIS[:LABEL] (input or output), e.g. "
                        "tokens:1:sequence")  # fmt: skip
    p.add_argument("--output-name", action="append", help="output names (default: output)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--sample-inputs", type=Path, help=".npz with one array per input name")
    p.add_argument(
        "--token-high",
        type=int,
        default=16,
        help="exclusive upper bound of random integer inputs (e.g. vocabulary size)",
    )
    p.set_defaults(run=_export)

    p = commands.add_parser("quantize", help="int8 (dynamic, static) or fp16, with a report")
    p.add_argument("model", type=Path)
    p.add_argument("--mode", required=True, choices=("int8-dynamic", "int8-static", "fp16"))
    p.add_argument("--out", type=Path)
    p.add_argument("--calibration", type=Path, help=".npz calibration data (int8-static)")
    p.add_argument("--report", type=Path, help="also write the report as JSON")
    p.set_defaults(run=_quantize)

    p = commands.add_parser("prune", help="global magnitude pruning, made permanent")
    p.add_argument("target", help="MODULE:FACTORY")
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--input", "--input-shape", action="append", required=True,
                   help="as for export")  # fmt: skip
    p.add_argument("--amount", type=float, required=True, help="share of weights to zero, 0-1")
    p.add_argument("--out", type=Path, required=True, help="where the pruned state dict goes")
    p.add_argument("--token-high", type=int, default=16)
    p.set_defaults(run=_prune)

    _add_distill(commands)
    _add_factorize(commands)

    p = commands.add_parser("digest", help="print the sha256 and write a manifest")
    p.add_argument("model", type=Path)
    p.add_argument("--name", help="model name (default: the file's stem)")
    p.add_argument("--version", default="v1")
    p.add_argument("--manifest", type=Path, help="default: MODEL.manifest.json")
    p.set_defaults(run=_digest)

    p = commands.add_parser("inspect", help="inputs, outputs, opset, size, operators")
    p.add_argument("model", type=Path)
    p.add_argument("--provider", choices=("cpu", "cuda", "tensorrt"), default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_inspect)

    trust.add_parsers(commands)
    rollout_commands.add_parser(commands)
    return parser


def _add_distill(commands: Any) -> None:
    p = commands.add_parser(
        "distill", help="train a small student to imitate a teacher (knowledge distillation)"
    )
    p.add_argument("--teacher", required=True, help="MODULE:FACTORY, or an ONNX file")
    p.add_argument("--teacher-checkpoint", type=Path, help="state dict of a PyTorch teacher")
    p.add_argument("--student", required=True, help="MODULE:FACTORY")
    p.add_argument("--student-checkpoint", type=Path, help="start from these weights")
    p.add_argument("--data", type=Path, required=True,
                   help=".npz: an array per model input (rows first), optional labels")  # fmt: skip
    p.add_argument("--eval-data", type=Path, help=".npz to report on (default: --holdout)")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="share of --data held out for the report (default 0.2)")  # fmt: skip
    p.add_argument("--labels", help="name of the labels array (default: 'labels', if present)")
    p.add_argument("--input", "--input-shape", action="append",
                   help="as for export (default: an ONNX teacher's inputs, the INPUTS of the "
                        "teacher's module, or the data set's arrays in file order)")  # fmt: skip
    p.add_argument("--output-name", action="append", help="output names of the exports")
    p.add_argument(
        "--alpha",
        type=float,
        help="weight of the label loss, 0-1 (default 0.5 with labels, 0 without)",
    )
    p.add_argument("--temperature", type=float, default=2.0, help="softmax temperature (2)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (0.001)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for training, the teacher and the timing (1)")  # fmt: skip
    p.add_argument("--token-high", type=int,
                   help="exclusive bound of random integer inputs in the parity check "
                        "(default: past the largest id in the data)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="where the student's state dict goes")
    p.add_argument("--report", type=Path, help="also write the report as JSON")
    p.set_defaults(run=_distill)


def _add_factorize(commands: Any) -> None:
    p = commands.add_parser("factorize", help="Linear layers -> low-rank pairs (SVD)")
    p.add_argument("target", help="MODULE:FACTORY")
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--input", "--input-shape", action="append", required=True,
                   help="as for export")  # fmt: skip
    choose = p.add_mutually_exclusive_group(required=True)
    choose.add_argument("--rank", type=int, help="the same rank for every layer")
    choose.add_argument("--energy", type=float,
                        help="per layer, the smallest rank keeping this share (0-1] of the "
                             "squared singular values")  # fmt: skip
    p.add_argument("--min-features", type=int, default=0,
                   help="leave layers with fewer input or output features alone")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="where the state dict goes")
    p.add_argument("--out-onnx", type=Path, help="also export the factorised model here")
    p.add_argument("--output-name", action="append", help="output names (default: output)")
    p.add_argument("--data", type=Path, help=".npz to compare on (default: seeded random)")
    p.add_argument("--labels", help="name of the labels array in --data (default: 'labels')")
    p.add_argument("--seed", type=int, default=0, help="for the random comparison inputs")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for the timing (1)")
    p.add_argument("--token-high", type=int, default=16)
    p.add_argument("--report", type=Path, help="also write the report as JSON")
    p.set_defaults(run=_factorize)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except CliError as e:
        print(f"modelyard {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"modelyard {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``modelyard-runtime``: ``serve`` runs the model server; ``fetch`` downloads and verifies a model.

Parses flags and env into ``Settings`` once, configures logging, installs uvloop when present,
and hands over to ``server.run.serve``. Exit codes: 0 clean stop, 1 startup failure (stage in the
termination log), 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import prometheus_client

from modelyard_runtime import __version__
from modelyard_runtime.errors import SettingsError
from modelyard_runtime.server.run import serve
from modelyard_runtime.settings import add_arguments, default_termination_log, settings_from
from modelyard_runtime.startup import write_termination_log
from modelyard_runtime.storage.fetch import FetchError, fetch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelyard-runtime", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="serve an ONNX model (OIP v2 REST, TF-Serving v1, /metrics)",
        description="Serve one ONNX model. Every flag can also be set by its env variable.",
    )
    add_arguments(serve_parser)
    fetch_parser = commands.add_parser(
        "fetch",
        help="download a model (file, http(s), s3, gs) and verify its signature and sha256",
        description="Download a model to --out, verifying its signature (--public-key) and "
        "--sha256 (the runtime pod's init step).",
    )
    fetch_parser.add_argument("--uri", required=True, help="file://, http(s)://, s3:// or gs://")
    fetch_parser.add_argument("--out", required=True, type=Path, help="where to write the model")
    fetch_parser.add_argument("--sha256", default="", help="expected sha256 (64 hex characters)")
    fetch_parser.add_argument(
        "--public-key",
        type=Path,
        default=None,
        help="Ed25519 public key (PEM): the signature at URI.sig must be by this key and cover "
        "the downloaded file",
    )
    fetch_parser.add_argument(
        "--termination-log",
        default=None,
        help="where a failure is written as `stage: reason` [env MODELYARD_TERMINATION_LOG]",
    )
    return parser


def run_fetch(args: argparse.Namespace) -> int:
    """``fetch``: exit 0 with the file in place, or 1 with ``stage: reason`` written."""
    termination_log = args.termination_log
    if termination_log is None:
        termination_log = os.environ.get("MODELYARD_TERMINATION_LOG") or default_termination_log()
    try:
        digest = fetch(
            args.uri, args.out, sha256=args.sha256.strip().lower(), public_key=args.public_key
        )
    except FetchError as e:
        write_termination_log(termination_log, str(e))
        print(f"modelyard-runtime fetch: {e}", file=sys.stderr)
        return 1
    signed = ", signature verified" if args.public_key else ""
    print(f"fetched {args.uri} to {args.out} (sha256 {digest}{signed})", file=sys.stderr)
    return 0


def _run(coroutine_factory: object) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine_factory)  # type: ignore[arg-type]
    return int(uvloop.run(coroutine_factory))  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return run_fetch(args)
    try:
        settings = settings_from(args, os.environ)
    except SettingsError as e:
        termination_log = getattr(args, "termination_log", None) or os.environ.get(
            "MODELYARD_TERMINATION_LOG", ""
        )
        write_termination_log(termination_log, f"settings: {e}")
        parser.exit(2, f"modelyard-runtime: error: {e}\n")
    # No *_created series: noise to scrapers.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    who = " [%(process)d]" if settings.processes > 1 else ""  # which of the processes
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s{who} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return _run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())

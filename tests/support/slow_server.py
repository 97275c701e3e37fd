"""A runtime server whose session takes a fixed time per batch, for drain and timeout tests.

Run as ``python -m tests.support.slow_server serve --model <any file> --compute-seconds S ...``:
the real ``serve`` lifecycle (signals, drain, metrics) with a FakeSession instead of onnxruntime.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from modelyard_runtime.cli import build_parser
from modelyard_runtime.datatypes import Array, TensorSpec
from modelyard_runtime.server.run import serve
from modelyard_runtime.session import ModelSession
from modelyard_runtime.session.fake import FakeSession
from modelyard_runtime.settings import Settings, settings_from

SPEC_IN = TensorSpec("x", "FP32", (-1, 4))
SPEC_OUT = TensorSpec("y", "FP32", (-1, 4))


def main() -> int:
    argv = sys.argv[1:]
    compute = float(argv[argv.index("--compute-seconds") + 1])
    del argv[argv.index("--compute-seconds") : argv.index("--compute-seconds") + 2]
    settings = settings_from(build_parser().parse_args(argv), os.environ)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")

    def slow(feeds: Mapping[str, Array]) -> list[Array]:
        time.sleep(compute)  # simulated inference time, not synchronisation
        return [feeds["x"] + 1]

    def loader(path: Path, settings: Settings) -> ModelSession:
        return FakeSession(slow, inputs=[SPEC_IN], outputs=[SPEC_OUT])

    return asyncio.run(serve(settings, loader=loader))


if __name__ == "__main__":
    sys.exit(main())

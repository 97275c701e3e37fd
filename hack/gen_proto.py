"""Generate the OIP v2 gRPC stubs (``make proto``); the contract test calls ``generate`` too.

The generated ``inference_pb2.py``, ``.pyi`` and ``inference_pb2_grpc.py`` are committed, so the
runtime needs no protoc; regenerate after editing ``inference.proto``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO = "modelyard_runtime/protocol/pb/inference.proto"


def generate(out: Path) -> None:
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT / 'runtime'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(ROOT / "runtime" / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    isolate_descriptor_pool(out / PROTO.replace(".proto", "_pb2.py"))


def isolate_descriptor_pool(module: Path) -> None:
    """Register the messages in a private descriptor pool, not protobuf's default one.

    tritonclient's stubs define the same ``inference`` package; in the default pool the two
    collide ("duplicate symbol") in any process that imports both.
    """
    text = module.read_text()
    default = "_descriptor_pool.Default().AddSerializedFile("
    if default not in text:
        raise SystemExit(f"{module}: generated code changed shape; update isolate_descriptor_pool")
    module.write_text(text.replace(default, "_descriptor_pool.DescriptorPool().AddSerializedFile("))


if __name__ == "__main__":
    generate(ROOT / "runtime")
    sys.exit(0)

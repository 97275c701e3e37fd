"""The committed gRPC stubs are exactly what ``make proto`` generates from inference.proto."""

from __future__ import annotations

from pathlib import Path

from hack.gen_proto import PROTO, ROOT, generate


def test_generated_stubs_match_the_proto(tmp_path: Path) -> None:
    generate(tmp_path)
    generated_dir = tmp_path / Path(PROTO).parent
    committed_dir = ROOT / "runtime" / Path(PROTO).parent
    names = ["inference_pb2.py", "inference_pb2.pyi", "inference_pb2_grpc.py"]
    for name in names:
        generated = (generated_dir / name).read_text()
        committed = (committed_dir / name).read_text()
        assert generated == committed, f"{name} is stale: run `make proto`"

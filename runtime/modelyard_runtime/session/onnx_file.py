"""Reads the few ModelProto header fields the server reports, without the onnx package.

The ONNX file is a protobuf ``ModelProto``. Its top-level fields are walked with the wire format
(varints and length-delimited records), skipping the graph by its length, so a 2 GB model costs
no more than a small one. Used by ``session.onnx`` for the ``opset`` metric label.
"""

from __future__ import annotations

import dataclasses
import mmap
from pathlib import Path

_IR_VERSION = 1
_PRODUCER_NAME = 2
_OPSET_IMPORT = 8
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_MODEL_KEEP = frozenset({_PRODUCER_NAME, _OPSET_IMPORT})
_OPSET_KEEP = frozenset({1})


class NotOnnxError(ValueError):
    """The bytes are not a protobuf ModelProto."""


@dataclasses.dataclass(frozen=True, slots=True)
class OnnxHeader:
    ir_version: int
    producer_name: str
    opsets: dict[str, int]

    @property
    def default_opset(self) -> int:
        """The version of the default (``ai.onnx``) operator set, 0 if none is imported."""
        return self.opsets.get("", self.opsets.get("ai.onnx", 0))


def _varint(buf: bytes | mmap.mmap, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise NotOnnxError("truncated or malformed varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(
    buf: bytes | mmap.mmap, start: int, end: int, keep: frozenset[int]
) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field; LEN values are copied if in ``keep``."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise NotOnnxError("field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            value, pos = 0, pos + 8
        elif wire == _I32:
            value, pos = 0, pos + 4
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise NotOnnxError("length-delimited field runs past the end")
            value = bytes(buf[pos : pos + length]) if number in keep else b""
            pos += length
        else:
            raise NotOnnxError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    if pos != end:
        raise NotOnnxError("trailing bytes")
    return out


def parse_header(buf: bytes | mmap.mmap) -> OnnxHeader:
    ir_version, producer, opsets = 0, "", {}
    for number, wire, value in _fields(buf, 0, len(buf), _MODEL_KEEP):
        if number == _IR_VERSION and wire == _VARINT and isinstance(value, int):
            ir_version = value
        elif number == _PRODUCER_NAME and isinstance(value, bytes):
            producer = value.decode("utf-8", "replace")
        elif number == _OPSET_IMPORT and isinstance(value, bytes):
            domain, version = "", 0
            for sub_number, _, sub_value in _fields(value, 0, len(value), _OPSET_KEEP):
                if sub_number == 1 and isinstance(sub_value, bytes):
                    domain = sub_value.decode("utf-8", "replace")
                elif sub_number == 2 and isinstance(sub_value, int):
                    version = sub_value
            opsets[domain] = version
    if ir_version == 0:
        raise NotOnnxError("no ir_version field: not an ONNX model")
    return OnnxHeader(ir_version=ir_version, producer_name=producer, opsets=opsets)


def read_header(path: Path) -> OnnxHeader:
    """Parse the header of the ONNX file at ``path`` (memory-mapped, read-only)."""
    with path.open("rb") as f:
        if path.stat().st_size == 0:
            raise NotOnnxError("the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return parse_header(mapped)

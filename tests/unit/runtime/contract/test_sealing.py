"""Encrypted models (``contract.sealing``): round trips, and every way a file or key is wrong."""

from __future__ import annotations

import base64
import binascii
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard_runtime.contract import sealing

KEY = bytes(range(32))
SEGMENT = 64


def seal(data: bytes, key: bytes = KEY, segment: int = SEGMENT) -> bytes:
    sink = io.BytesIO()
    written = sealing.encrypt(io.BytesIO(data), sink, key, segment=segment)
    assert written == len(sink.getvalue())
    return sink.getvalue()


def unseal(blob: bytes, key: bytes = KEY) -> bytes:
    return sealing.decrypt(io.BytesIO(blob), key)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5 * SEGMENT), st.sampled_from([16, 17, SEGMENT, 1000]))
def test_round_trip_at_any_size(data: bytes, segment: int) -> None:
    blob = seal(data, segment=segment)
    assert sealing.is_sealed(blob)
    assert unseal(blob) == data


def test_the_plaintext_is_nowhere_in_the_file() -> None:
    data = b"distinctive model weights " * 50
    blob = seal(data)
    assert all(data[i : i + 16] not in blob for i in range(0, len(data) - 16, 7))


@pytest.mark.parametrize("length", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT])
def test_segment_boundaries(length: int) -> None:
    data = bytes(i % 251 for i in range(length))
    assert unseal(seal(data)) == data


def test_two_encryptions_differ() -> None:
    assert seal(b"same model") != seal(b"same model")  # a random nonce prefix each time


def test_wrong_key_is_named() -> None:
    with pytest.raises(sealing.SealError, match="wrong key: it was encrypted with key id"):
        unseal(seal(b"secret model"), key=bytes(32))


def test_truncated_at_a_segment_boundary() -> None:
    blob = seal(bytes(3 * SEGMENT + 5))
    cut = blob[: sealing.HEADER_BYTES + 2 * (SEGMENT + sealing.TAG_BYTES)]
    with pytest.raises(sealing.SealError, match="truncated: it ends after segment 2"):
        unseal(cut)


@pytest.mark.parametrize("keep", [sealing.HEADER_BYTES + 10, -1, -17])
def test_truncated_inside_a_segment(keep: int) -> None:
    blob = seal(bytes(3 * SEGMENT + 5))
    with pytest.raises(sealing.SealError, match="does not authenticate"):
        unseal(blob[:keep])


def test_truncated_inside_the_header() -> None:
    with pytest.raises(sealing.SealError, match="truncated inside its header"):
        unseal(seal(b"x")[:12])


def test_a_flipped_bit_is_detected() -> None:
    blob = bytearray(seal(bytes(2 * SEGMENT)))
    blob[sealing.HEADER_BYTES + SEGMENT + 20] ^= 1
    with pytest.raises(sealing.SealError, match="segment 2 does not authenticate"):
        unseal(bytes(blob))


def test_swapped_segments_are_detected() -> None:
    blob = seal(bytes(range(2 * SEGMENT)))
    size = SEGMENT + sealing.TAG_BYTES
    head, body = blob[: sealing.HEADER_BYTES], blob[sealing.HEADER_BYTES :]
    one, two, rest = body[:size], body[size : 2 * size], body[2 * size :]
    with pytest.raises(sealing.SealError, match="segment 1 does not authenticate"):
        unseal(head + two + one + rest)


def test_an_edited_header_is_detected() -> None:
    blob = bytearray(seal(bytes(10)))
    blob[sealing.HEADER_BYTES - 1] ^= 1  # the nonce prefix, the header's last bytes
    with pytest.raises(sealing.SealError, match="does not authenticate"):
        unseal(bytes(blob))


def test_a_plain_model_is_not_decrypted() -> None:
    with pytest.raises(sealing.SealError, match="not an encrypted modelyard model"):
        unseal(b"\x08\x07plain onnx protobuf")


def test_an_unknown_version_is_refused() -> None:
    blob = bytearray(seal(b"x"))
    blob[len(sealing.MAGIC)] = 9
    with pytest.raises(sealing.SealError, match="format version 9 is not supported"):
        unseal(bytes(blob))


@pytest.mark.parametrize(
    "text",
    [KEY, base64.b64encode(KEY), base64.b64encode(KEY) + b"\n", binascii.hexlify(KEY) + b"\n"],
)
def test_key_files_raw_base64_or_hex(text: bytes) -> None:
    assert sealing.parse_key(text) == KEY


@pytest.mark.parametrize("text", [b"", b"short", base64.b64encode(bytes(16)), b"z" * 64])
def test_bad_key_files_are_refused(text: bytes) -> None:
    with pytest.raises(sealing.SealError, match="not a 32-byte AES-256 key"):
        sealing.parse_key(text)


def test_generated_keys_round_trip_through_their_file() -> None:
    key = sealing.generate_key()
    assert sealing.parse_key(sealing.encode_key(key)) == key
    assert unseal(seal(b"m", key=key), key=key) == b"m"

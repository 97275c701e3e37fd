"""Encrypted models at rest: the file format ``modelyard encrypt`` writes and the runtime reads.

AES-256-GCM over fixed-size segments (the STREAM construction, as in Tink's streaming AEAD), so
a model is encrypted while it streams and any cut, swap or change of a segment is detected::

    header (28 bytes): magic "\\x89MDYGCM\\n" | version 1 | segment size u32 | key id (8) |
                       nonce prefix (7, random)
    segments:          AES-GCM(key, nonce_i, plaintext_i, aad=header), each segment size + 16

``nonce_i`` is the prefix, the segment's index (u32) and a last-segment flag, so a file cut at a
segment boundary fails too (its new last segment was not sealed as the last). The key id (a hash
of the key) tells a wrong key from a damaged file. Keys are 32 bytes, stored raw, as base64 or as
hex (``modelyard keygen encryption`` writes base64).

``decrypt`` returns the plaintext in memory: the runtime loads its session from those bytes, so
the plaintext model never touches a disk. ``SealError`` says in words what is wrong. Streams in,
bytes out; no paths here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Iterator
from typing import IO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC: Final = b"\x89MDYGCM\n"
VERSION: Final = 1
KEY_BYTES: Final = 32
TAG_BYTES: Final = 16
PREFIX_BYTES: Final = 7
KEY_ID_BYTES: Final = 8
DEFAULT_SEGMENT: Final = 1 << 20
MIN_SEGMENT, MAX_SEGMENT = 16, 64 << 20
_HEADER = struct.Struct(f">8sBI{KEY_ID_BYTES}s{PREFIX_BYTES}s")
HEADER_BYTES: Final = _HEADER.size


class SealError(ValueError):
    """A key or an encrypted file that cannot be used; the message says why."""


def generate_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encode_key(key: bytes) -> bytes:
    """The key file's text: base64 and a newline."""
    return base64.b64encode(key) + b"\n"


def parse_key(data: bytes) -> bytes:
    """A 32-byte key from a key file: raw, base64 or hex."""
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    decoded = b""
    try:
        if len(text) == 2 * KEY_BYTES:
            decoded = binascii.unhexlify(text)
        else:
            decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != KEY_BYTES:
        raise SealError(
            f"the key is {len(data)} bytes that are not a 32-byte AES-256 key (raw, base64 or hex)"
        )
    return decoded


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"modelyard.key-id\0" + key).digest()[:KEY_ID_BYTES]


def is_sealed(head: bytes) -> bool:
    """Whether a file starting with ``head`` is in this format."""
    return head.startswith(MAGIC)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _segments(source: IO[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """(chunk, is it the last one) for every chunk of ``source``; at least one, maybe empty."""
    current = source.read(size)
    while True:
        following = source.read(size) if len(current) == size else b""
        yield current, not following
        if not following:
            return
        current = following


def encrypt(
    source: IO[bytes], sink: IO[bytes], key: bytes, *, segment: int = DEFAULT_SEGMENT
) -> int:
    """Encrypt ``source`` into ``sink``; the number of bytes written."""
    if len(key) != KEY_BYTES:
        raise SealError("an AES-256 key is 32 bytes")
    if not MIN_SEGMENT <= segment <= MAX_SEGMENT:
        raise SealError(f"segment size must be {MIN_SEGMENT}..{MAX_SEGMENT} bytes")
    prefix = os.urandom(PREFIX_BYTES)
    header = _HEADER.pack(MAGIC, VERSION, segment, key_id(key), prefix)
    aead = AESGCM(key)
    written = sink.write(header)
    for index, (chunk, last) in enumerate(_segments(source, segment)):
        if index > 0xFFFFFFFF:
            raise SealError("the file is too large for one encrypted stream")
        written += sink.write(aead.encrypt(_nonce(prefix, index, last), chunk, header))
    return written


def decrypt(source: IO[bytes], key: bytes) -> bytes:
    """The plaintext of an encrypted stream, authenticated; ``SealError`` says what is wrong."""
    header = source.read(HEADER_BYTES)
    if not is_sealed(header):
        raise SealError("it is not an encrypted modelyard model (no header): encrypt it with "
                        "`modelyard encrypt`, or drop the key")  # fmt: skip
    if len(header) < HEADER_BYTES:
        raise SealError("it is truncated inside its header")
    _, version, segment, file_key_id, prefix = _HEADER.unpack(header)
    if version != VERSION:
        raise SealError(f"format version {version} is not supported (only {VERSION})")
    if not MIN_SEGMENT <= segment <= MAX_SEGMENT:
        raise SealError(f"its segment size {segment} is out of range: the header is damaged")
    if file_key_id != key_id(key):
        raise SealError(
            f"wrong key: it was encrypted with key id {file_key_id.hex()}, the key given has id "
            f"{key_id(key).hex()}"
        )
    aead = AESGCM(key)
    plaintext: list[bytes] = []
    for index, (sealed, last) in enumerate(_segments(source, segment + TAG_BYTES)):
        try:
            plaintext.append(aead.decrypt(_nonce(prefix, index, last), sealed, header))
        except InvalidTag as e:
            raise _damage(aead, prefix, header, index, sealed, last) from e
    return b"".join(plaintext)


def _damage(
    aead: AESGCM, prefix: bytes, header: bytes, index: int, sealed: bytes, last: bool
) -> SealError:
    """Why segment ``index`` failed: a cut at a segment boundary, or damage."""
    if last and len(sealed) >= TAG_BYTES:
        try:
            aead.decrypt(_nonce(prefix, index, False), sealed, header)
        except InvalidTag:
            pass
        else:
            return SealError(
                f"it is truncated: it ends after segment {index + 1}, which was not the last"
            )
    return SealError(
        f"segment {index + 1} does not authenticate: the file is truncated, corrupted or was "
        "changed after it was encrypted"
    )

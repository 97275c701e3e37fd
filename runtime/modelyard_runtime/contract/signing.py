"""Signed models: the signature file ``modelyard sign`` writes and ``fetch`` verifies.

An Ed25519 key signs a short statement of the file's sha256 and size, not the file itself, so a
model of any size is signed and verified while it streams (the digest is computed anyway). The
signature lives beside the model, at the model's URI plus ``.sig``, as a small JSON document::

    {"format": "modelyard.signature/v1", "algorithm": "ed25519", "sha256": "<hex>",
     "size": 1234, "keyId": "ed25519:<16 hex>", "signature": "<base64>"}

The statement signed is ``modelyard.signature/v1\\nsha256:<hex>\\nsize:<n>\\n``: the format name
keeps a signing key's signatures from meaning anything else. ``keyId`` names the public key
(a hash of it) so a wrong key is reported as one; it carries no trust, the signature does.

Keys are PEM: the private key PKCS#8, the public key SubjectPublicKeyInfo, as ``openssl genpkey
-algorithm ed25519`` writes them too. Used by the user CLI (``keygen``, ``sign``, ``verify``)
and by ``storage.fetch``; ``SignatureError`` says in words what is wrong. No file I/O here.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT: Final = "modelyard.signature/v1"
ALGORITHM: Final = "ed25519"
SUFFIX: Final = ".sig"
MAX_SIGNATURE_BYTES: Final = 64 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(ValueError):
    """A signature or key that cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Signature:
    """What a signature file claims: the file's digest and size, and who signed it."""

    sha256: str
    size: int
    key_id: str
    signature: bytes

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "algorithm": ALGORITHM,
            "sha256": self.sha256,
            "size": self.size,
            "keyId": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        return (json.dumps(document, indent=2) + "\n").encode()


def statement(sha256: str, size: int) -> bytes:
    """The bytes an Ed25519 key signs for a file with this digest and size."""
    return f"{FORMAT}\nsha256:{sha256}\nsize:{size}\n".encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{ALGORITHM}:{hashlib.sha256(raw).hexdigest()[:16]}"


def generate() -> tuple[bytes, bytes]:
    """A new key pair as PEM: (private key, public key)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private_pem, public_pem(private.public_key())


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise SignatureError(f"not a PEM private key without a passphrase: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"the private key is {type(key).__name__}, not Ed25519")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise SignatureError(f"not a PEM public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"the public key is {type(key).__name__}, not Ed25519")
    return key


def sign(private_key: Ed25519PrivateKey, *, sha256: str, size: int) -> Signature:
    """The signature of a file with this digest and size."""
    if not _SHA256.match(sha256) or size < 0:
        raise SignatureError("sha256 must be 64 lowercase hex characters and size not negative")
    return Signature(
        sha256=sha256,
        size=size,
        key_id=key_id(private_key.public_key()),
        signature=private_key.sign(statement(sha256, size)),
    )


def parse(document: bytes) -> Signature:
    """Read a signature file; ``SignatureError`` if it is not one."""
    if len(document) > MAX_SIGNATURE_BYTES:
        raise SignatureError(f"it is {len(document)} bytes, more than a signature ever is")
    try:
        data: Any = json.loads(document)
    except (ValueError, UnicodeDecodeError) as e:
        raise SignatureError(f"it is not JSON: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SignatureError(f"it is not a {FORMAT} document")
    if data.get("algorithm") != ALGORITHM:
        raise SignatureError(f"algorithm {data.get('algorithm')!r} is not {ALGORITHM}")
    sha256, size, kid = data.get("sha256"), data.get("size"), data.get("keyId")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise SignatureError("its sha256 is not 64 lowercase hex characters")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise SignatureError("its size is not a non-negative integer")
    try:
        raw = base64.b64decode(str(data.get("signature", "")), validate=True)
    except (binascii.Error, ValueError) as e:
        raise SignatureError(f"its signature is not base64: {e}") from e
    if len(raw) != 64:
        raise SignatureError(f"its signature is {len(raw)} bytes, not the 64 of Ed25519")
    return Signature(sha256=sha256, size=size, key_id=str(kid or ""), signature=raw)


def verify(document: bytes, public_key: Ed25519PublicKey, *, sha256: str, size: int) -> Signature:
    """Check that ``document`` is a valid signature by ``public_key`` of a file with this digest
    and size; ``SignatureError`` names the first thing that fails."""
    signature = parse(document)
    expected = key_id(public_key)
    try:
        public_key.verify(signature.signature, statement(signature.sha256, signature.size))
    except InvalidSignature as e:
        if signature.key_id and signature.key_id != expected:
            raise SignatureError(
                f"it was made with key {signature.key_id}, not with the trusted public key "
                f"{expected}"
            ) from e
        raise SignatureError(f"it does not verify with the trusted public key {expected}") from e
    if (signature.sha256, signature.size) != (sha256, size):
        raise SignatureError(
            f"it covers sha256 {signature.sha256} ({signature.size} bytes) but the file has "
            f"sha256 {sha256} ({size} bytes): the model changed after it was signed"
        )
    return signature

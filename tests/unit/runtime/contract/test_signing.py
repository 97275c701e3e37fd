"""Model signatures (``contract.signing``): what verifies, and what each failure says."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess

import pytest

from modelyard_runtime.contract import signing

DATA = b"model bytes " * 100
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return signing.generate()


def signed(private_pem: bytes, sha256: str = DIGEST, size: int = len(DATA)) -> bytes:
    key = signing.load_private_key(private_pem)
    return signing.sign(key, sha256=sha256, size=size).to_json()


def test_a_signature_verifies_with_its_public_key(keys: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keys
    public = signing.load_public_key(public_pem)
    found = signing.verify(signed(private_pem), public, sha256=DIGEST, size=len(DATA))
    assert found.sha256 == DIGEST
    assert found.key_id == signing.key_id(public)
    assert found.key_id.startswith("ed25519:")


def test_a_changed_file_is_refused(keys: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keys
    other = hashlib.sha256(DATA + b"!").hexdigest()
    with pytest.raises(signing.SignatureError, match="the model changed after it was signed"):
        signing.verify(signed(private_pem), signing.load_public_key(public_pem),
                       sha256=other, size=len(DATA) + 1)  # fmt: skip


def test_another_key_is_named_as_such(keys: tuple[bytes, bytes]) -> None:
    private_pem, _ = keys
    _, stranger = signing.generate()
    with pytest.raises(signing.SignatureError, match="not with the trusted public key ed25519:"):
        signing.verify(signed(private_pem), signing.load_public_key(stranger),
                       sha256=DIGEST, size=len(DATA))  # fmt: skip


def test_an_edited_statement_does_not_verify(keys: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keys
    document = json.loads(signed(private_pem))
    document["sha256"] = "0" * 64  # an attacker points the signature at another file
    with pytest.raises(signing.SignatureError, match="does not verify with the trusted public"):
        signing.verify(json.dumps(document).encode(), signing.load_public_key(public_pem),
                       sha256="0" * 64, size=len(DATA))  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="other/v1"), "is not a modelyard.signature/v1 document"),
        (lambda d: d.update(algorithm="rsa"), "algorithm 'rsa' is not ed25519"),
        (lambda d: d.update(sha256="xyz"), "sha256 is not 64 lowercase hex"),
        (lambda d: d.update(size=-1), "size is not a non-negative integer"),
        (lambda d: d.update(size=True), "size is not a non-negative integer"),
        (lambda d: d.update(signature="***"), "signature is not base64"),
        (lambda d: d.update(signature=base64.b64encode(b"short").decode()), "not the 64 of"),
    ],
)
def test_malformed_documents_say_what_is_wrong(
    keys: tuple[bytes, bytes], edit: object, message: str
) -> None:
    document = json.loads(signed(keys[0]))
    edit(document)  # type: ignore[operator]
    with pytest.raises(signing.SignatureError, match=message):
        signing.parse(json.dumps(document).encode())


@pytest.mark.parametrize("document", [b"", b"not json", b"[1, 2]", b"{" + b" " * 70000 + b"}"])
def test_what_is_not_a_signature_is_refused(document: bytes) -> None:
    with pytest.raises(signing.SignatureError):
        signing.parse(document)


def test_keys_of_another_kind_are_refused(keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(signing.SignatureError, match="not a PEM public key"):
        signing.load_public_key(keys[0][:40])
    with pytest.raises(signing.SignatureError, match="not a PEM private key"):
        signing.load_private_key(keys[1])


def test_openssl_keys_work() -> None:
    try:
        generated = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"],
                                   capture_output=True, check=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no openssl with ed25519 here")
    private_pem = generated.stdout
    public_pem = subprocess.run(["openssl", "pkey", "-pubout"], input=private_pem,
                                capture_output=True, check=True, timeout=30).stdout  # fmt: skip
    document = signed(private_pem)
    signing.verify(document, signing.load_public_key(public_pem), sha256=DIGEST, size=len(DATA))

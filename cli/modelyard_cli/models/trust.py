"""``modelyard keygen``, ``sign``, ``verify`` and ``encrypt``: model files a cluster can trust.

``sign`` writes ``MODEL.sig`` beside the model (Ed25519, ``contract.signing``): upload both, and
a ModelDeployment with ``spec.model.signature`` refuses a file that the trusted key did not sign.
``encrypt`` writes the model AES-256-GCM encrypted (``contract.sealing``); a ModelDeployment with
``spec.model.encryption`` decrypts it in the runtime's memory only. To do both, encrypt first and
sign the encrypted file: the fetch step checks what it downloads, without the decryption key.

Key files are written with mode 0600 and never overwritten. Every failure is a
``ModelToolError`` with a message for people.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from modelyard_cli.errors import ModelToolError
from modelyard_runtime.contract import sealing, signing
from modelyard_runtime.contract.digest import sha256_file

__all__ = ["add_parsers"]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ModelToolError(f"cannot read the {what} {path}: {e.strerror or e}") from e


def _write_new(path: Path, data: bytes, *, private: bool) -> None:
    """Write a file that must not exist yet (0600 if ``private``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    except FileExistsError as e:
        raise ModelToolError(f"{path} exists: keys are never overwritten; remove it first") from e
    except OSError as e:
        raise ModelToolError(f"cannot write {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[IO[bytes]]:
    """Write ``path`` through ``path.partial``, renamed only when everything was written."""
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as sink:
            yield sink
        partial.replace(path)
    except OSError as e:
        raise ModelToolError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        partial.unlink(missing_ok=True)


def keygen(kind: str, out: Path) -> list[str]:
    """New keys at ``out``; the lines to print."""
    if kind == "signing":
        private_pem, public_pem = signing.generate()
        key, pub = out.with_name(out.name + ".key"), out.with_name(out.name + ".pub")
        for path in (key, pub):
            if path.exists():
                raise ModelToolError(f"{path} exists: keys are never overwritten; remove it first")
        _write_new(pub, public_pem, private=False)
        _write_new(key, private_pem, private=True)
        kid = signing.key_id(signing.load_public_key(public_pem))
        return [f"private key: {key} (keep it secret; `modelyard sign --key`)",
                f"public key:  {pub} ({kid}; for spec.model.signature.publicKeyRef)"]  # fmt: skip
    key_bytes = sealing.generate_key()
    _write_new(out, sealing.encode_key(key_bytes), private=True)
    kid = sealing.key_id(key_bytes).hex()
    return [
        f"AES-256 key: {out} (key id {kid}; for `modelyard encrypt --key` and the Secret that "
        "spec.model.encryption.keySecretRef names)"
    ]


def sign_model(model: Path, key: Path, out: Path | None) -> list[str]:
    private = _load(signing.load_private_key, _read(key, "private key"), key)
    if not model.is_file():
        raise ModelToolError(f"{model}: no such file")
    digest, size = sha256_file(model), model.stat().st_size
    signature = signing.sign(private, sha256=digest, size=size)
    target = out or model.with_name(model.name + signing.SUFFIX)
    with _replacing(target) as sink:
        sink.write(signature.to_json())
    return [f"signed {model} (sha256 {digest}, {size} bytes) with {signature.key_id}",
            f"signature: {target} (upload it beside the model)"]  # fmt: skip


def verify_model(model: Path, public_key: Path, signature: Path | None) -> list[str]:
    trusted = _load(signing.load_public_key, _read(public_key, "public key"), public_key)
    source = signature or model.with_name(model.name + signing.SUFFIX)
    document = _read(source, "signature")
    if not model.is_file():
        raise ModelToolError(f"{model}: no such file")
    try:
        found = signing.verify(
            document, trusted, sha256=sha256_file(model), size=model.stat().st_size
        )
    except signing.SignatureError as e:
        raise ModelToolError(f"signature {source}: {e}") from e
    return [f"{model}: signature OK (sha256 {found.sha256}, {found.key_id})"]


def encrypt_model(model: Path, key: Path, out: Path | None) -> list[str]:
    key_bytes = _load(sealing.parse_key, _read(key, "key"), key)
    target = out or model.with_name(model.name + ".enc")
    if target.resolve() == model.resolve():
        raise ModelToolError("--out must differ from the model")
    try:
        with model.open("rb") as source:
            if sealing.is_sealed(source.read(len(sealing.MAGIC))):
                raise ModelToolError(f"{model} is already encrypted")
            source.seek(0)
            with _replacing(target) as sink:
                sealing.encrypt(source, sink, key_bytes)
    except OSError as e:
        raise ModelToolError(f"cannot read {model}: {e.strerror or e}") from e
    digest = sha256_file(target)
    return [f"encrypted {model} to {target} with key id {sealing.key_id(key_bytes).hex()}",
            f"sha256 of the encrypted file (spec.model.sha256): {digest}"]  # fmt: skip


def _load(parse: Any, data: bytes, path: Path) -> Any:
    try:
        return parse(data)
    except (signing.SignatureError, sealing.SealError) as e:
        raise ModelToolError(f"{path}: {e}") from e


def _run(args: argparse.Namespace) -> None:
    if args.command == "keygen":
        lines = keygen(args.kind, args.out)
    elif args.command == "sign":
        lines = sign_model(args.model, args.key, args.out)
    elif args.command == "verify":
        lines = verify_model(args.model, args.public_key, args.signature)
    else:
        lines = encrypt_model(args.model, args.key, args.out)
    print("\n".join(lines))


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("keygen", help="a signing key pair (Ed25519) or an AES-256 key")
    p.add_argument("kind", choices=("signing", "encryption"))
    p.add_argument("--out", type=Path, required=True,
                   help="signing: PREFIX for PREFIX.key and PREFIX.pub; encryption: the key "
                        "file")  # fmt: skip
    p.set_defaults(run=_run)

    p = commands.add_parser("sign", help="write MODEL.sig, an Ed25519 signature of the model")
    p.add_argument("model", type=Path)
    p.add_argument("--key", type=Path, required=True, help="private key (PEM, from keygen)")
    p.add_argument("--out", type=Path, help="default: MODEL.sig")
    p.set_defaults(run=_run)

    p = commands.add_parser("verify", help="check MODEL.sig against a trusted public key")
    p.add_argument("model", type=Path)
    p.add_argument("--public-key", type=Path, required=True, help="public key (PEM)")
    p.add_argument("--signature", type=Path, help="default: MODEL.sig")
    p.set_defaults(run=_run)

    p = commands.add_parser("encrypt", help="AES-256-GCM encrypt a model for encrypted serving")
    p.add_argument("model", type=Path)
    p.add_argument("--key", type=Path, required=True, help="key file (from keygen encryption)")
    p.add_argument("--out", type=Path, help="default: MODEL.enc")
    p.set_defaults(run=_run)

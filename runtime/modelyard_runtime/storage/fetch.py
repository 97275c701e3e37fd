"""``modelyard-runtime fetch``: download a model to a local path and verify its sha256.

Runs as the init container of every runtime pod. Sources: ``file://`` (a path this container
sees: in the image or on a mounted volume; the operator mounts ``pvc://`` claims and passes a
``file://`` path), ``http(s)://`` (optional ``HTTP_AUTHORIZATION`` header from env), ``s3://``
(boto3; credentials from the standard AWS env, ``AWS_ENDPOINT_URL`` for S3-compatible servers) and
``gs://`` (Google Cloud Storage's S3-compatible XML API with HMAC keys in the same env).

The file is streamed to ``<out>.partial`` while hashing and renamed only when the digest
matches, so a reader never sees a half-written or unverified model. With a public key, the
signature beside the model (``<uri>.sig``, ``contract.signing``) is read first and must cover
the digest and size of what was downloaded, by that key. Failures raise ``FetchError`` with stage
``download``, ``signature`` or ``verify``; the CLI writes ``stage: reason`` to the termination log.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Final
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelyard_runtime.contract import signing
from modelyard_runtime.contract.names import Stage
from modelyard_runtime.errors import ModelyardError

CHUNK: Final = 1 << 20
HTTP_TIMEOUT: Final = 60.0
GCS_ENDPOINT: Final = "https://storage.googleapis.com"
SCHEMES: Final = ("file", "http", "https", "s3", "gs")


class FetchError(ModelyardError):
    def __init__(self, stage: Stage, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


def _open_file(uri: str, _: Mapping[str, str]) -> IO[bytes]:
    path = Path(urlsplit(uri).path)
    try:
        return path.open("rb")
    except OSError as e:
        raise FetchError("download", f"cannot read {path}: {e.strerror or e}") from e


def _open_http(uri: str, environ: Mapping[str, str]) -> IO[bytes]:
    request = urllib.request.Request(uri)  # noqa: S310 - the scheme is checked by fetch()
    if environ.get("HTTP_AUTHORIZATION"):
        request.add_header("Authorization", environ["HTTP_AUTHORIZATION"])
    try:
        return urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)  # type: ignore[no-any-return]  # noqa: S310
    except urllib.error.HTTPError as e:
        e.close()
        raise FetchError("download", f"GET {uri}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError("download", f"GET {uri}: {reason}") from e


def _open_object_store(uri: str, environ: Mapping[str, str]) -> IO[bytes]:
    import boto3
    import botocore.exceptions

    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    endpoint = environ.get("AWS_ENDPOINT_URL") or (GCS_ENDPOINT if parts.scheme == "gs" else None)
    try:
        client = boto3.session.Session(
            aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=environ.get("AWS_SESSION_TOKEN"),
            region_name=environ.get("AWS_REGION")
            or environ.get("AWS_DEFAULT_REGION")
            or "us-east-1",
        ).client("s3", endpoint_url=endpoint)
        response = client.get_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        detail = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        raise FetchError("download", f"{uri}: {detail}") from e
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        raise FetchError("download", f"{uri}: {e}") from e
    return response["Body"]  # type: ignore[no-any-return]


OPENERS: Final[dict[str, Callable[[str, Mapping[str, str]], IO[bytes]]]] = {
    "file": _open_file,
    "http": _open_http,
    "https": _open_http,
    "s3": _open_object_store,
    "gs": _open_object_store,
}


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while block := stream.read(CHUNK):
        yield block


def signature_uri(uri: str) -> str:
    """Where the signature of the model at ``uri`` lives: its path plus ``.sig``."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=parts.path + signing.SUFFIX))


def _trusted_key(path: Path) -> Ed25519PublicKey:
    try:
        pem = path.read_bytes()
    except FileNotFoundError as e:
        raise FetchError(
            "signature",
            f"no public key at {path} (does the ConfigMap or Secret that "
            "spec.model.signature.publicKeyRef names exist, with that key?)",
        ) from e
    except OSError as e:
        raise FetchError("signature", f"cannot read the public key {path}: {e}") from e
    try:
        return signing.load_public_key(pem)
    except signing.SignatureError as e:
        raise FetchError("signature", f"the public key {path} is unusable: {e}") from e


def _read_signature(uri: str, environ: Mapping[str, str]) -> bytes:
    scheme = urlsplit(uri).scheme
    try:
        with OPENERS[scheme](uri, environ) as source:
            return source.read(signing.MAX_SIGNATURE_BYTES + 1)
    except FetchError as e:
        raise FetchError("signature", f"no signature for the model: {e.message}") from e
    except OSError as e:
        raise FetchError("signature", f"cannot read the signature {uri}: {e}") from e


def fetch(
    uri: str,
    out: Path,
    *,
    sha256: str = "",
    environ: Mapping[str, str] | None = None,
    public_key: Path | None = None,
) -> str:
    """Copy ``uri`` to ``out``, verify it (signature by ``public_key`` if given, then digest),
    return its sha256. ``FetchError`` names the stage."""
    scheme = urlsplit(uri).scheme
    if scheme not in OPENERS or not urlsplit(uri).path.strip("/"):
        raise FetchError(
            "download", f"unsupported model URI {uri!r}: use one of {', '.join(SCHEMES)}"
        )
    environ = os.environ if environ is None else environ
    trusted = _trusted_key(public_key) if public_key is not None else None
    signature = _read_signature(signature_uri(uri), environ) if trusted is not None else b""
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        with OPENERS[scheme](uri, environ) as source, partial.open("wb") as sink:
            for block in _chunks(source):
                digest.update(block)
                size += len(block)
                sink.write(block)
    except FetchError:
        partial.unlink(missing_ok=True)
        raise
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise FetchError("download", f"{uri}: {e}") from e
    actual = digest.hexdigest()
    if trusted is not None:
        try:
            signing.verify(signature, trusted, sha256=actual, size=size)
        except signing.SignatureError as e:
            partial.unlink(missing_ok=True)
            raise FetchError("signature", f"signature {signature_uri(uri)}: {e}") from e
    if sha256 and actual != sha256:
        partial.unlink(missing_ok=True)
        raise FetchError("verify", f"sha256 of {uri} is {actual}, expected {sha256}")
    shutil.move(partial, out)
    return actual

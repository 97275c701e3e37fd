"""Write a minimal OCI image archive (one layer) that ``ctr images import`` and podman accept.

Used for the real node's sandbox ("pause") image: a static binary built from
``hack/cluster/pause.c`` needs no base image, so it is packed here without an image builder.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

MEDIA = "application/vnd.oci.image"


def _blob(out: tarfile.TarFile, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def _layer(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """An uncompressed layer tar: path -> (content, mode), owned by root, mtime 0."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for path, (content, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), mode
            layer.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_archive(
    path: Path,
    reference: str,
    files: Mapping[str, tuple[bytes, int]],
    *,
    entrypoint: Sequence[str],
    user: str = "65535:65535",
) -> str:
    """Write an OCI archive of one layer holding ``files``; returns the manifest digest."""
    layer = _layer(files)
    compressed = gzip.compress(layer, mtime=0)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": list(entrypoint), "User": user},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as out:
        layer_desc = _blob(out, compressed, f"{MEDIA}.layer.v1.tar+gzip")
        config_desc = _blob(out, json.dumps(config).encode(), f"{MEDIA}.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": f"{MEDIA}.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}  # fmt: skip
        manifest_desc = _blob(out, json.dumps(manifest).encode(), f"{MEDIA}.manifest.v1+json")
        manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": reference}
        index = {"schemaVersion": 2, "mediaType": f"{MEDIA}.index.v1+json",
                 "manifests": [manifest_desc]}  # fmt: skip
        for name, data in (
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            ("index.json", json.dumps(index).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return str(manifest_desc["digest"])

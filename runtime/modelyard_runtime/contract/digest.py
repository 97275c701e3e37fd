"""The digest a ModelDeployment pins (``spec.model.sha256``): sha256 of the file's bytes.

Used by the runtime (verify before serving), by ``fetch`` (verify while downloading) and by
``modelyard digest``. Reads the file in chunks; nothing else.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()

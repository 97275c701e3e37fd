"""Writes a section of ``BENCHMARKS.md``: replaces the one under the same heading, or appends."""

from __future__ import annotations

from pathlib import Path


def update_report(out: Path, text: str, marker: str) -> None:
    existing = out.read_text() if out.exists() else "# Benchmarks\n"
    if marker in existing:
        before, _, rest = existing.partition(marker)
        after = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        existing = before + text + ("\n" + after if after else "")
    else:
        existing = existing.rstrip("\n") + "\n\n" + text
    out.write_text(existing)

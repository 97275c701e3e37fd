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


def write_section(out: Path, section: str, begin: str, end: str) -> None:
    """Replace ``out``'s part from ``begin`` to ``end`` (markers included in ``section``) with
    ``section``, or append it when the markers are not there yet."""
    existing = out.read_text() if out.exists() else "# Benchmarks\n"
    if begin in existing:
        start, stop = existing.index(begin), existing.index(end) + len(end)
        existing = existing[:start] + section + existing[stop:]
    else:
        existing = existing.rstrip("\n") + "\n\n" + section + "\n"
    out.write_text(existing)

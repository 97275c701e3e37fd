"""The benchmarks' report sections: replaced between their markers, appended when new."""

from __future__ import annotations

from pathlib import Path

from hack.bench.report import write_section

BEGIN, END = "<!-- x:begin -->", "<!-- x:end -->"


def test_a_section_replaces_the_one_between_its_markers_and_keeps_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"# Benchmarks\n\n{BEGIN}\nold\n{END}\n\n## Other\nkept\n")
    write_section(out, f"{BEGIN}\nnew\n{END}", BEGIN, END)
    assert out.read_text() == f"# Benchmarks\n\n{BEGIN}\nnew\n{END}\n\n## Other\nkept\n"


def test_a_new_section_is_appended(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## Other\nkept\n\n\n")
    write_section(out, f"{BEGIN}\nnew\n{END}", BEGIN, END)
    assert out.read_text() == f"# Benchmarks\n\n## Other\nkept\n\n{BEGIN}\nnew\n{END}\n"


def test_a_missing_file_starts_with_the_title(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    write_section(out, f"{BEGIN}\nnew\n{END}", BEGIN, END)
    assert out.read_text() == f"# Benchmarks\n\n{BEGIN}\nnew\n{END}\n"

"""The source roots must never shadow the stdlib (design §2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_folder_is_a_source_root_not_a_package() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert not (ROOT / "runtime" / "__init__.py").exists()


def test_stdlib_operator_still_imports_from_the_repo_root() -> None:
    code = "import operator, collections; print(operator.itemgetter(0)([7]))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "7"


def test_hack_never_imports_tests() -> None:
    """tests/ builds on hack/ (the cluster, the testbed), never the other way round."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "hack").rglob("*.py")
        if any(
            line.startswith(("from tests", "import tests"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []

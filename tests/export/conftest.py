"""The export pipeline needs torch (the `export` extra); without it these tests skip."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the export extra (torch) is not installed")

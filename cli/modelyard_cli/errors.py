"""The CLI's error tree: every failure a user sees is a ``CliError`` with a message for people.

``main`` prints it as one ``modelyard <command>: error: …`` line and exits 1 (never a traceback).
"""

from __future__ import annotations


class CliError(Exception):
    """Root of every error the CLI reports."""


class ModelToolError(CliError):
    """A model command (export, quantize, prune, digest, inspect) failed."""

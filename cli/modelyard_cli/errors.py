"""The CLI's error tree: every failure a user sees is a ``CliError`` with a message for people.

``main`` prints it as one ``modelyard <command>: error: …`` line and exits with its
``exit_code`` (1; 130 for an interrupted command, as a shell reports Ctrl-C), never a traceback.
"""

from __future__ import annotations


class CliError(Exception):
    """Root of every error the CLI reports."""

    exit_code = 1


class ModelToolError(CliError):
    """A model command (export, quantize, prune, distill, factorize, digest, inspect) failed."""


class InterruptedCommandError(ModelToolError):
    """Ctrl-C stopped a command; the message says what was saved."""

    exit_code = 130

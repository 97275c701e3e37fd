"""The operator's error tree. ``handlers`` maps it onto kopf in one place."""

from __future__ import annotations


class ModelyardOperatorError(Exception):
    """Root of every error raised by operator code."""


class ConfigError(ModelyardOperatorError):
    """The operator's own configuration is invalid; it exits 2 before connecting."""


class SpecError(ModelyardOperatorError):
    """A ModelDeployment cannot be reconciled as written; retrying will not help."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

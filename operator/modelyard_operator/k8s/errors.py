"""Typed API errors: the status code decides the class, the server's message is kept."""

from __future__ import annotations

import json

from modelyard_operator.errors import ModelyardOperatorError


class K8sError(ModelyardOperatorError):
    """An API call failed. ``status`` 0 means no HTTP answer (connection, timeout)."""

    retryable = True

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class K8sNotFoundError(K8sError):
    retryable = False


class K8sConflictError(K8sError):
    """409: another writer won; read again and retry."""


class K8sForbiddenError(K8sError):
    """403. Retried with backoff: a restarted apiserver denies requests until its RBAC cache
    has loaded, and a missing permission may be granted later (kopf retries its own 403s too)."""


class K8sInvalidError(K8sError):
    """422: the object we sent is invalid."""

    retryable = False


_BY_STATUS: dict[int, type[K8sError]] = {
    403: K8sForbiddenError,
    404: K8sNotFoundError,
    409: K8sConflictError,
    422: K8sInvalidError,
}


def error_for(status: int, method: str, path: str, body: str) -> K8sError:
    try:
        message = str(json.loads(body).get("message", body))
    except (ValueError, AttributeError):
        message = body
    cls = _BY_STATUS.get(status, K8sError)
    return cls(status, f"{method} {path}: {status or 'no answer'}: {message[:500]}")

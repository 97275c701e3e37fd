"""The runtime's one error tree.

Every failure the server reports to a client is a ``RuntimeServiceError`` carrying its HTTP status
and a metrics ``reason``; the transports (REST here, gRPC later) map it in exactly one place.
Startup failures are ``StartupError`` with the stage name written to the termination log.
Third-party exceptions are chained (``raise ... from e``) and never cross a package boundary.
"""

from __future__ import annotations

from modelyard_runtime.contract.names import Stage


class ModelyardError(Exception):
    """Root of every error raised by modelyard code."""


class RuntimeServiceError(ModelyardError):
    """A request could not be served; ``http_status`` and ``reason`` say how to report it."""

    http_status = 500
    reason = "internal"
    close_connection = False  # True: the body may be partly unread; end the connection

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(RuntimeServiceError):
    http_status = 400
    reason = "bad_request"


class UnsupportedMediaTypeError(InvalidInputError):
    http_status = 415


class NotFoundError(RuntimeServiceError):
    http_status = 404
    reason = "not_found"


class MalformedBodyError(InvalidInputError):
    """The body's framing or content coding is broken: what is left of it cannot be trusted."""

    close_connection = True


class PayloadTooLargeError(RuntimeServiceError):
    http_status = 413
    reason = "too_large"
    close_connection = True


class TooManyRowsError(PayloadTooLargeError):
    """More rows in one request than ``max_request_rows``; the body was read whole."""

    close_connection = False


class BodyTimeoutError(RuntimeServiceError):
    """The request body did not arrive within ``body_timeout_seconds`` (408)."""

    http_status = 408
    reason = "body_timeout"
    close_connection = True


class ClientClosedError(RuntimeServiceError):
    """The client went away before its request was read; 499 (nginx's code) in the metrics, and
    nothing is answered."""

    http_status = 499
    reason = "client_closed"
    close_connection = True


class UnauthorizedError(RuntimeServiceError):
    http_status = 401
    reason = "unauthorized"


class QueueFullError(RuntimeServiceError):
    """The bounded queue is full; the client should retry after ``retry_after`` seconds."""

    http_status = 429
    reason = "queue_full"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeoutError(RuntimeServiceError):
    """The request's deadline passed before its result was ready (504, gRPC DEADLINE_EXCEEDED)."""

    http_status = 504
    reason = "timeout"


class UnavailableError(RuntimeServiceError):
    """Not ready yet, shutting down, or the GPU the deployment requires is missing."""

    http_status = 503
    reason = "unavailable"


class InferenceFailedError(RuntimeServiceError):
    """The session raised while running a batch."""

    http_status = 500
    reason = "inference_error"


class StartupError(ModelyardError):
    """A fatal startup failure; ``stage`` (``contract.names.Stage``) goes to the termination log."""

    def __init__(self, stage: Stage, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


class SettingsError(ModelyardError):
    """A configuration value (env or flag) is invalid; the message names it."""

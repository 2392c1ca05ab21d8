"""Exceptions of the SDK.

Raised by a step, an exception becomes the attempt's failure:

* ``StepError(message, kind=..., details=..., retryable=True)`` — the kind
  is what ``diverge`` rules match on; retryable failures are retried under
  the step's retry policy.
* ``NonRetryableError(message, kind=...)`` — the same with
  ``retryable=False``: the step fails into its diverge rules at once.
* any other exception — kind is its class name (``ValueError``), message
  ``str(exc)``, the traceback goes into ``details.traceback``, retryable
  unless the class has a ``retryable = False`` attribute.

Raised by the client and the worker: ``CerebelumError`` and subclasses
named after the gRPC status the node answered with.
"""

from __future__ import annotations

from typing import Any


class StepError(Exception):
    """A step failure with an explicit kind, details and retry flag."""

    retryable = True

    def __init__(self, message: str, *, kind: str = "step_error",
                 details: dict[str, Any] | None = None,
                 retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.details = details
        if retryable is not None:
            self.retryable = retryable


class NonRetryableError(StepError):
    """A failure that retrying cannot fix (bad input, a declined card)."""

    retryable = False

    def __init__(self, message: str, *, kind: str = "non_retryable",
                 details: dict[str, Any] | None = None):
        super().__init__(message, kind=kind, details=details,
                         retryable=False)


class CerebelumError(Exception):
    """The node refused a call; ``code`` is the gRPC status code."""

    def __init__(self, message: str, code=None):
        super().__init__(message)
        self.code = code


class NotFound(CerebelumError):
    """Unknown execution, workflow, worker or queue."""


class InvalidArgument(CerebelumError):
    """Malformed request: bad JSON, invalid workflow definition, ..."""


class FailedPrecondition(CerebelumError):
    """The execution (or attempt) is not in a state that allows the call."""


class Unavailable(CerebelumError):
    """The node cannot be reached, is shutting down or its store is down."""


class Unauthenticated(CerebelumError):
    """The node checks tokens and got none, or an unknown, expired or
    revoked one (gRPC UNAUTHENTICATED)."""


class PermissionDenied(CerebelumError):
    """The token's role or scopes do not allow the call, or the worker id
    belongs to another token (gRPC PERMISSION_DENIED)."""


class Overloaded(CerebelumError):
    """The node refused a start because it is over capacity (nothing was
    written); retry it in a second. ``Client.start`` does so by itself
    within its timeout."""


class DeadlineExceeded(CerebelumError, TimeoutError):
    """The wait ended before the execution did."""


class RegistrationError(InvalidArgument):
    """The node rejected the worker's workflow definitions or queues."""


class ExecutionFailed(CerebelumError):
    """``Client.result`` of an execution that failed or was cancelled."""

    def __init__(self, execution):
        err = execution.error or {}
        msg = (f"execution {execution.execution_id} {execution.status}"
               + (f": {err.get('kind')}: {err.get('message')}" if err else ""))
        super().__init__(msg)
        self.execution = execution


def from_rpc_error(e, what: str = "", hint: str = "") -> CerebelumError:
    """Maps a ``grpc.RpcError`` to the matching CerebelumError subclass;
    ``hint`` is appended to the message."""
    import grpc

    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else str(e)
    cls = {
        grpc.StatusCode.NOT_FOUND: NotFound,
        grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
        grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
        grpc.StatusCode.UNAVAILABLE: Unavailable,
        grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
        grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
        grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
        grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    }.get(code, CerebelumError)
    name = code.name if code is not None else "error"
    prefix = f"{what}: " if what else ""
    return cls(f"{prefix}{name}: {details}{hint}", code)

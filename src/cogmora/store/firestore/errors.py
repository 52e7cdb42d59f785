"""google.api_core exceptions, translated into cogmora.errors at the Firestore boundary.

Grouped by what the caller does: contention and an unreachable service are retried with
backoff (Temporary); a missing index is the seed's production failure (FailedPrecondition,
with Firestore's own message, which carries the link that creates the index); a request
Firestore refuses as malformed will be refused again (Rejected); credentials and
permissions are configuration (Fatal).
"""

from __future__ import annotations

from google.api_core import exceptions as gexc

from cogmora.errors import (
    CogmoraError,
    ConfigError,
    Conflict,
    FailedPrecondition,
    Fatal,
    NotFound,
    Temporary,
    ValidationError,
)

_TEMPORARY = (
    gexc.Aborted,
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.TooManyRequests,  # RESOURCE_EXHAUSTED: quota, or "too much contention"
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.GatewayTimeout,
    gexc.Cancelled,
    gexc.RetryError,
)


def translate(exc: BaseException) -> CogmoraError:
    """Our error for a google.api_core (or google.auth) exception."""
    if isinstance(exc, gexc.AlreadyExists):
        return Conflict(f"document already exists: {exc.message}")
    if isinstance(exc, gexc.FailedPrecondition):
        return FailedPrecondition(f"FAILED_PRECONDITION from Firestore: {exc.message}")
    if isinstance(exc, gexc.NotFound):
        return NotFound(str(exc.message))
    if isinstance(exc, _TEMPORARY):
        return Temporary(f"Firestore: {exc}")
    if isinstance(exc, gexc.InvalidArgument | gexc.OutOfRange):
        return ValidationError("doc", f"Firestore refused the request: {exc.message}")
    if isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated):
        return ConfigError("COGMORA_STORE", f"Firestore refused our credentials: {exc.message}")
    if _is_auth_error(exc):
        return ConfigError("GOOGLE_APPLICATION_CREDENTIALS", f"no usable credentials: {exc}")
    return Fatal(f"Firestore: {exc!r}")


def _is_auth_error(exc: BaseException) -> bool:
    try:
        from google.auth import exceptions as auth_exc
    except ImportError:  # pragma: no cover - google-auth ships with the client
        return False
    return isinstance(exc, auth_exc.GoogleAuthError)

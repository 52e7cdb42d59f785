"""One error shape for every 4xx/5xx: `{"detail": message, "field": name-or-null}`.

Pydantic's list of error objects is folded into one sentence that names the field, so a
client (or a trader reading a log) sees `qty: must be a decimal number`, not a stack of
`loc` arrays.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from cogmora.errors import (
    CogmoraError,
    Conflict,
    InsufficientBalance,
    NotFound,
    Rejected,
    Temporary,
    ValidationError,
)

log = structlog.get_logger("cogmora.api")

# The HTTP status of each kind of refusal; the nearest listed ancestor decides.
STATUS: dict[type[Rejected], int] = {
    ValidationError: 422,
    InsufficientBalance: 422,
    NotFound: 404,
    Conflict: 409,
    Rejected: 400,
}


def status_of(exc: Rejected) -> int:
    return next(STATUS[k] for k in type(exc).__mro__ if k in STATUS)


class ErrorBody(BaseModel):
    """What every 4xx/5xx answer carries, documented once for every route."""

    detail: str = Field(examples=["stopLoss: must be below the entry price for a long"])
    field: str | None = Field(
        description="the request field at fault (dotted path), or null", examples=["stopLoss"]
    )


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# The error answers the API really sends, on every route (the app factory's default), so a
# client generated from the OpenAPI document knows their shape.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("missing or invalid bearer token (with `WWW-Authenticate: Bearer`)"),
    404: _documented("not found, or another user's document"),
    409: _documented("conflicts with the document's state, or no fresh price for the symbol"),
    422: _documented("the request is invalid: `detail` names the field and the rule"),
    503: _documented("temporarily unavailable (store contention, a feed down): retry"),
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _error(status: int, detail: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = _field(tuple(first.get("loc", ())))
        message = str(first.get("msg", "is invalid"))
        content_type = request.headers.get("content-type", "")
        if field == "body" and "json" not in content_type and request.method != "GET":
            # Without the header the body was never read as JSON: say what to send.
            message = (
                f"must be JSON sent with Content-Type: application/json "
                f"(got {content_type or 'no Content-Type'})"
            )
        elif first.get("type") == "json_invalid":
            # its loc is ("body", character offset): the offset is not a field
            field = "body"
            error = (first.get("ctx") or {}).get("error")
            message = "is not valid JSON" + (f" ({error})" if error else "")
        elif first.get("type") == "missing":
            message = "is required"
        elif first.get("type") == "extra_forbidden":
            message = "is not a known field"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        return _error(422, f"{field}: {message}", field)

    @app.exception_handler(CogmoraError)
    async def cogmora_error(_: Request, exc: CogmoraError) -> JSONResponse:
        if isinstance(exc, Rejected):
            field = exc.field if isinstance(exc, ValidationError) else None
            return _error(status_of(exc), str(exc), field)
        if isinstance(exc, Temporary):
            log.warning("temporary failure", error=str(exc))
            return _error(503, f"temporarily unavailable: {exc}")
        log.error("internal error", error=str(exc))
        return _error(500, "internal error")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug, not the client's fault: log it whole, answer in the usual shape.
        log.error("unhandled error", error=repr(exc), exc_info=exc)
        return _error(500, "internal error")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8): an invalid body like
            # any other, so a 422 that names it, not an undocumented 400.
            return _error(422, f"body: is not valid JSON ({exc.detail})", "body")
        response = _error(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

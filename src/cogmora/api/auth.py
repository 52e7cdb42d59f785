"""Bearer-token authentication: every route but health, metrics and docs knows its caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cogmora.api.deps import ApiDeps

_bearer = HTTPBearer(auto_error=False, description="the token printed by `cogmora users create`")


def deps(request: Request) -> ApiDeps:
    value: ApiDeps = request.app.state.deps
    return value


async def current_uid(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "missing bearer token (Authorization: Bearer TOKEN)",
            {"WWW-Authenticate": "Bearer"},
        )
    uid = await deps(request).accounts.uid_for_token(credentials.credentials)
    if uid is None:
        raise HTTPException(401, "invalid bearer token", {"WWW-Authenticate": "Bearer"})
    return uid


Uid = Annotated[str, Depends(current_uid)]
Deps = Annotated[ApiDeps, Depends(deps)]

"""Bearer-token authentication: every route but health, metrics and docs knows its caller.

A bearer token is either one of ours (`cogmora users create`, stored hashed) or, when
COGMORA_FIREBASE_PROJECT is set, a Firebase ID token whose `uid` is the account
(`cogmora.api.firebase_auth`). The two cannot be confused: ours never contain a dot.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cogmora.api.deps import ApiDeps
from cogmora.api.firebase_auth import FirebaseIdTokens, InvalidIdToken, looks_like_jwt

_bearer = HTTPBearer(
    auto_error=False,
    description="the token printed by `cogmora users create`, or a Firebase ID token",
)


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
    token = credentials.credentials
    firebase: FirebaseIdTokens | None = deps(request).firebase_id_tokens
    if firebase is not None and looks_like_jwt(token):
        try:
            return await firebase.uid_for(token)
        except InvalidIdToken as exc:
            raise HTTPException(
                401, f"invalid Firebase ID token: {exc}", {"WWW-Authenticate": "Bearer"}
            ) from None
    uid = await deps(request).accounts.uid_for_token(token)
    if uid is None:
        raise HTTPException(401, "invalid bearer token", {"WWW-Authenticate": "Bearer"})
    return uid


Uid = Annotated[str, Depends(current_uid)]
Deps = Annotated[ApiDeps, Depends(deps)]

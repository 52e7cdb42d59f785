"""Firebase ID tokens as API credentials: the seed's front end signs users in with Firebase
Auth and sends the ID token as its bearer token; the token's `uid` is the account.

Verification is firebase-admin's `auth.verify_id_token` (Google's public keys, fetched and
cached by the SDK; no service account is needed to verify, so the app is given anonymous
credentials). With FIREBASE_AUTH_EMULATOR_HOST set the SDK accepts the Auth emulator's
unsigned tokens instead, as every Firebase SDK does.

An account is created on first use with the configured opening balance, through
`Accounts.create_user`, whose create-if-absent transaction makes two racing first
requests create one account (the loser's Conflict means the account now exists).
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import firebase_admin
import google.auth.credentials
from firebase_admin import auth, credentials

from cogmora.errors import Conflict, NotFound, Temporary, ValidationError
from cogmora.services.accounts import Accounts, check_uid

KNOWN_CAP = 100_000


class _VerifyOnly(credentials.Base):  # type: ignore[misc]
    """Verifying an ID token reads only Google's public keys: no credential is sent."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        anonymous: google.auth.credentials.Credentials = (
            google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]
        )
        return anonymous


class InvalidIdToken(Exception):
    """The token is not a valid Firebase ID token of this project; the message says why."""


def looks_like_jwt(token: str) -> bool:
    """Our own tokens are URL-safe base64 without dots; an ID token is a three-part JWT."""
    return token.count(".") == 2


class FirebaseIdTokens:
    def __init__(self, project: str, opening_balance: Decimal, accounts: Accounts) -> None:
        self.project = project
        self._opening = opening_balance
        self._accounts = accounts
        name = f"cogmora-auth-{project}"
        try:
            self._app = firebase_admin.get_app(name)
        except ValueError:
            self._app = firebase_admin.initialize_app(
                _VerifyOnly(), {"projectId": project}, name=name
            )
        self._known: set[str] = set()

    async def uid_for(self, token: str) -> str:
        """The account of a valid ID token, created if this is its first request."""
        claims = await asyncio.to_thread(self._verify, token)
        uid = str(claims.get("uid") or claims.get("sub") or "")
        try:
            check_uid(uid)
        except ValidationError as exc:
            raise InvalidIdToken(f"its uid cannot name an account: {exc}") from None
        if uid not in self._known:
            await self._ensure_account(uid)
            if len(self._known) >= KNOWN_CAP:
                self._known.clear()
            self._known.add(uid)
        return uid

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = auth.verify_id_token(token, app=self._app)
        except auth.CertificateFetchError as exc:
            raise Temporary(f"cannot fetch Firebase's token keys: {exc}") from exc
        except (auth.InvalidIdTokenError, ValueError) as exc:  # expired, revoked: subclasses
            raise InvalidIdToken(str(exc)) from exc
        return claims

    async def _ensure_account(self, uid: str) -> None:
        try:
            await self._accounts.get_user(uid)
            return
        except NotFound:
            pass
        # A racing first request that created it first: one account either way.
        with contextlib.suppress(Conflict):
            await self._accounts.create_user(uid, self._opening)

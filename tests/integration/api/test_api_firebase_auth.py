"""Firebase ID tokens over real HTTP, against firebase-tools' Auth emulator: users signed up
there get real (emulator-issued) ID tokens, and the API takes each one's uid as the account,
created on first use with the configured opening balance, beside our own bearer tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from cogmora.cli.compose import System, build_system
from cogmora.domain.enums import LedgerKind
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from conftest import LiveServer, ManualClock

PROJECT = "demo-cogmora"  # .ci/run starts the Auth emulator for this project
OPENING = D("2500")


@pytest.fixture
def system(
    store: SqliteStore,
    db_path: Path,
    catalog: SymbolCatalog,
    clock: ManualClock,
    auth_emulator: str,
) -> System:
    settings = Settings(
        store_url=f"sqlite:///{db_path}",
        firebase_project=PROJECT,
        firebase_opening_balance=OPENING,
    )
    return build_system(settings, store, catalog=catalog, clock=clock)


async def sign_up(host: str) -> tuple[str, str]:
    """A new user of the Auth emulator: (uid, ID token), as the app's sign-in gets them."""
    url = f"http://{host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=demo"
    body = {
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "password": "correct horse",
        "returnSecureToken": True,
    }
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(url, json=body)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data["localId"], data["idToken"]


async def test_an_id_token_opens_an_account_with_the_opening_balance(
    live_server: LiveServer, auth_emulator: str
) -> None:
    """The first request with a new user's ID token creates their account: uid, 2500 USDT."""
    uid, token = await sign_up(auth_emulator)
    async with live_server.client(token) as c:
        r = await c.get("/v1/account")
        assert r.status_code == 200, r.text
        assert r.json()["uid"] == uid
        assert D(r.json()["balance"]) == OPENING
        again = await c.get("/v1/account")
    assert again.status_code == 200
    ledger = await live_server.system.accounts.ledger(uid)
    assert [(e.kind, e.amount) for e in ledger] == [(LedgerKind.DEPOSIT, OPENING)]


async def test_racing_first_requests_create_one_account(
    live_server: LiveServer, auth_emulator: str
) -> None:
    """Eight first requests at once with one new token: all answered, one account, one deposit."""
    uid, token = await sign_up(auth_emulator)
    async with live_server.client(token) as c:
        answers = await asyncio.gather(*(c.get("/v1/account") for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    ledger = await live_server.system.accounts.ledger(uid)
    assert [(e.kind, e.amount) for e in ledger] == [(LedgerKind.DEPOSIT, OPENING)]
    assert (await live_server.system.accounts.get_user(uid)).balance == OPENING


async def test_our_own_bearer_tokens_still_work_beside_id_tokens(
    live_server: LiveServer, make_user: Any
) -> None:
    """A token from `cogmora users create` is accepted as before."""
    _, token = await make_user("alice", "10")
    async with live_server.client(token) as c:
        r = await c.get("/v1/account")
    assert r.status_code == 200 and r.json()["uid"] == "alice"


def unsigned(claims: dict[str, Any]) -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_bad_id_tokens_are_refused_with_401(
    live_server: LiveServer, auth_emulator: str
) -> None:
    """Another project's token and garbage are 401 and create no account. (Expiry and
    signatures are checked only against Google's keys: with the emulator the SDK skips both.)"""

    def claims(uid: str, aud: str, issued: int) -> dict[str, Any]:
        return {
            "sub": uid,
            "user_id": uid,
            "aud": aud,
            "iss": f"https://securetoken.google.com/{aud}",
            "iat": issued,
            "exp": issued + 3600,
            "auth_time": issued,
        }

    now = int(time.time())
    other = unsigned(claims("stranger", "demo-other", now))
    tokens = [other, "not.a.jwt", unsigned(claims("", PROJECT, now))]
    async with live_server.client() as c:
        for token in tokens:
            r = await c.get("/v1/account", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, r.text
            assert r.json()["detail"].startswith("invalid Firebase ID token"), r.text
            assert r.headers["www-authenticate"] == "Bearer"
    for uid in ("stranger",):
        assert await live_server.system.store.read(lambda tx, u=uid: tx.get(f"users/{u}")) is None


async def test_auth_config_points_the_page_at_the_auth_emulator(
    live_server: LiveServer, auth_emulator: str
) -> None:
    """Without a bearer, /v1/auth/config names the project and the emulator's REST bases."""
    async with live_server.client() as c:
        r = await c.get("/v1/auth/config")
    assert r.status_code == 200, r.text
    fb = r.json()["firebase"]
    assert fb["projectId"] == PROJECT and fb["emulator"] is True
    assert fb["identityToolkit"] == f"http://{auth_emulator}/identitytoolkit.googleapis.com/v1"
    assert fb["secureToken"] == f"http://{auth_emulator}/securetoken.googleapis.com/v1"

"""deploy/firestore.rules, enforced by the emulator on client requests: the Firestore REST
API with an end user's ID token (unsigned, which the emulator accepts), as the app's
Firebase SDK sends them. Server code (Bearer owner) bypasses the rules."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from emulators import FirestoreProjects

RULES = Path(__file__).resolve().parents[2] / "deploy" / "firestore.rules"
USER_COLLECTIONS = (
    "openPositions",
    "tradeTriggers",
    "positionHistory",
    "ledger",
    "watchlist",
    "agent",
    "agentDecisions",
)
INTERNAL = (
    "tokens/0f3a",
    "idempotency/9b1c",
    "schedules/watchlist",
    "users/ann/llmBudget/2026-01-01",
    "elsewhere/doc",
)


def id_token(project: str, uid: str) -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims = {
        "sub": uid,
        "user_id": uid,
        "aud": project,
        "iss": f"https://securetoken.google.com/{project}",
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "auth_time": 1_700_000_000,
        "firebase": {"sign_in_provider": "password"},
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class Client:
    """One signed-in user (or nobody) talking to Firestore's REST API."""

    def __init__(self, http: httpx.Client, project: str, uid: str | None) -> None:
        self.http = http
        self.root = f"/v1/projects/{project}/databases/(default)/documents"
        self.headers = {} if uid is None else {"Authorization": f"Bearer {id_token(project, uid)}"}

    def get(self, path: str) -> int:
        return self.http.get(f"{self.root}/{path}", headers=self.headers).status_code

    def patch(self, path: str, fields: dict[str, Any]) -> int:
        body = {"fields": {k: {"stringValue": str(v)} for k, v in fields.items()}}
        return self.http.patch(f"{self.root}/{path}", json=body, headers=self.headers).status_code

    def create(self, parent: str, collection: str, fields: dict[str, Any]) -> int:
        body = {"fields": {k: {"stringValue": str(v)} for k, v in fields.items()}}
        url = f"{self.root}/{parent}/{collection}" if parent else f"{self.root}/{collection}"
        return self.http.post(url, json=body, headers=self.headers).status_code

    def delete(self, path: str) -> int:
        return self.http.delete(f"{self.root}/{path}", headers=self.headers).status_code

    def query(self, parent: str, collection: str, all_descendants: bool = False) -> int:
        url = f"{self.root}/{parent}:runQuery" if parent else f"{self.root}:runQuery"
        query = {"from": [{"collectionId": collection, "allDescendants": all_descendants}]}
        answer = self.http.post(url, json={"structuredQuery": query}, headers=self.headers)
        return answer.status_code


@pytest.fixture(scope="module")
def world(firestore_projects: FirestoreProjects) -> Iterator[tuple[str, httpx.Client]]:
    """A project with the rules loaded and documents of two users and the services."""
    project = firestore_projects.new("demo-rules")
    http = httpx.Client(base_url=f"http://{firestore_projects.host}", timeout=30)
    rules = {"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}}
    loaded = http.put(f"/emulator/v1/projects/{project}:securityRules", json=rules)
    assert loaded.status_code == 200, loaded.text
    admin = firestore.Client(project=project)
    for uid in ("ann", "bob"):
        admin.document(f"users/{uid}").set({"balance": "1000", "currency": "USDT"})
        for collection in USER_COLLECTIONS:
            admin.document(f"users/{uid}/{collection}/x").set({"uid": uid, "symbol": "BTC-USDT"})
    for path in INTERNAL:
        admin.document(path).set({"uid": "ann"})
    admin.document("prices/BTC-USDT").set({"price": "67000"})
    admin.close()
    try:
        yield project, http
    finally:
        http.close()


@pytest.fixture
def ann(world: tuple[str, httpx.Client]) -> Client:
    return Client(world[1], world[0], "ann")


@pytest.fixture
def nobody(world: tuple[str, httpx.Client]) -> Client:
    return Client(world[1], world[0], None)


def test_a_user_reads_their_own_documents(ann: Client) -> None:
    """Ann reads her user document and a document of each of her collections."""
    assert ann.get("users/ann") == 200
    for collection in USER_COLLECTIONS:
        assert ann.get(f"users/ann/{collection}/x") == 200, collection


def test_a_user_lists_their_own_collections(ann: Client) -> None:
    """Ann's queries of her own collections are allowed."""
    for collection in USER_COLLECTIONS:
        assert ann.query("users/ann", collection) == 200, collection


def test_another_users_documents_are_refused(ann: Client) -> None:
    """Ann cannot read Bob's user document, his documents or query his collections."""
    assert ann.get("users/bob") == 403
    for collection in USER_COLLECTIONS:
        assert ann.get(f"users/bob/{collection}/x") == 403, collection
        assert ann.query("users/bob", collection) == 403, collection


def test_internal_documents_are_refused(ann: Client) -> None:
    """Tokens, idempotency records, schedules and the LLM budget are unreadable, even Ann's."""
    for path in INTERNAL:
        assert ann.get(path) == 403, path
    assert ann.query("", "tokens") == 403
    assert ann.query("", "users") == 403


def test_nobody_signed_in_reads_nothing(nobody: Client) -> None:
    """Without an ID token, users' documents and prices are refused."""
    assert nobody.get("users/ann") == 403
    assert nobody.get("users/ann/openPositions/x") == 403
    assert nobody.get("prices/BTC-USDT") == 403


def test_signed_in_users_read_prices(ann: Client) -> None:
    """Prices are public to any signed-in user."""
    assert ann.get("prices/BTC-USDT") == 200


def test_every_client_write_is_refused(ann: Client) -> None:
    """Ann can neither create, change nor delete anything, her own balance included."""
    assert ann.patch("users/ann", {"balance": "1000000"}) == 403
    assert ann.delete("users/ann") == 403
    for collection in USER_COLLECTIONS:
        assert ann.patch(f"users/ann/{collection}/x", {"qty": "999"}) == 403, collection
        assert ann.create("users/ann", collection, {"uid": "ann"}) == 403, collection
        assert ann.delete(f"users/ann/{collection}/x") == 403, collection
    assert ann.patch("users/ann/openPositions/x", {"details.status": "closed"}) == 403
    assert ann.patch("prices/BTC-USDT", {"price": "1"}) == 403
    assert ann.create("", "tokens", {"uid": "ann"}) == 403
    assert ann.patch("users/carl", {"balance": "5"}) == 403


def test_a_client_collection_group_query_is_refused(ann: Client) -> None:
    """A query across every user's positions (the worker's query) is refused to a client."""
    for collection in ("openPositions", "tradeTriggers", "ledger"):
        assert ann.query("", collection, all_descendants=True) == 403, collection
        assert ann.query("users/ann", collection, all_descendants=True) == 403, collection


def test_documents_are_unchanged_after_the_refused_writes(
    world: tuple[str, httpx.Client], ann: Client
) -> None:
    """What the refused writes aimed at is as it was: the emulator enforced the rules."""
    project, _ = world
    admin = firestore.Client(project=project)
    try:
        assert (admin.document("users/ann").get().to_dict() or {})["balance"] == "1000"
        assert admin.document("users/ann/openPositions/x").get().exists
        assert not admin.document("users/carl").get().exists
    finally:
        admin.close()

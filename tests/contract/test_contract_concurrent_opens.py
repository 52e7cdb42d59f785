"""Concurrent opens on few users, over HTTP, on every backend (issue 7: "16 concurrent API
clients made 100 opens over 5 users, all 201"). Before the user document's lanes, on the
Firestore emulator about one in five of these answered 503 (contention)."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

import httpx

from cogmora.domain.enums import Market, Side
from cogmora.domain.orders import OpenRequest
from cogmora.errors import InsufficientBalance
from cogmora.services.idempotency import IdempotencyKey

if TYPE_CHECKING:
    from conftest import LiveServer

USERS = 5
CLIENTS = 16
OPENS = 100
BODY = {"symbol": "XBTUSDTM", "market": "futures", "side": "long", "qty": "0.01", "leverage": "10"}


async def ledger_sums(client: httpx.AsyncClient) -> D:
    balance = D((await client.get("/v1/account")).json()["balance"])
    entries = (await client.get("/v1/ledger")).json()
    assert sum((D(e["amount"]) for e in entries), D(0)) == balance
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert D(entries[-1]["balanceAfter"]) == balance
    return balance


async def test_16_clients_make_100_opens_over_5_users_all_201_and_ledgers_sum(
    live_server: LiveServer, make_user: Any, quote: Any
) -> None:
    """Every open answers 201, each user's balance is the sum of its ledger, and each open
    moved exactly its margin and fee (3000 * 0.01 / 10 = 3, fee 0.018)."""
    quote("XBTUSDTM", "3000")
    clients = []
    for u in range(USERS):
        _, token = await make_user(f"u{u}", "10000")
        clients.append(live_server.client(token))
    todo = iter(range(OPENS))
    statuses: list[int] = []

    async def caller() -> None:
        for k in todo:
            r = await clients[k % USERS].post("/v1/positions", json=BODY)
            statuses.append(r.status_code)

    try:
        await asyncio.gather(*(caller() for _ in range(CLIENTS)))
        assert statuses == [201] * OPENS
        for client in clients:
            assert await ledger_sums(client) == D("10000") - 20 * (D(3) + D("0.018"))
            assert len((await client.get("/v1/positions")).json()) == 20
    finally:
        for client in clients:
            await client.aclose()


async def test_opens_committed_together_refuse_only_the_one_the_balance_cannot_pay(
    system: Any, make_user: Any, quote: Any
) -> None:
    """Ten opens at once for a user whose balance pays for seven: seven are booked, three
    refused with nothing written for them, whichever transaction each one shared."""
    await make_user("carol", "21.2")  # 7 x (3 + 0.018) = 21.126
    quote("XBTUSDTM", "3000")
    request = OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG, qty=D("0.01"), leverage=D(10))
    got = await asyncio.gather(
        *(system.positions.open("carol", request) for _ in range(10)), return_exceptions=True
    )
    assert sum(isinstance(g, InsufficientBalance) for g in got) == 3
    assert sum(isinstance(g, dict) for g in got) == 7
    assert (await system.accounts.get_user("carol")).balance == D("21.2") - D("21.126")
    entries = await system.accounts.ledger("carol")
    assert len(entries) == 1 + 2 * 7
    assert sum((e.amount for e in entries), D(0)) == D("0.074")
    assert len(await system.positions.list_for_user("carol")) == 7


async def test_the_same_idempotency_key_sent_concurrently_opens_one_position(
    system: Any, make_user: Any, quote: Any
) -> None:
    """Five concurrent opens with one Idempotency-Key: one position, five equal answers
    (never two records in one transaction)."""
    await make_user("dave", "10000")
    quote("XBTUSDTM", "3000")
    request = OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG, qty=D("0.01"), leverage=D(10))
    key = IdempotencyKey.of("dave", "k-1", "POST /v1/positions", BODY)
    answers = await asyncio.gather(*(system.positions.open("dave", request, key) for _ in range(5)))
    assert len({a["id"] for a in answers}) == 1
    assert len(await system.positions.list_for_user("dave")) == 1

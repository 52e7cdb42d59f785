"""Concurrent trigger placements and cancels on few users, on every backend (issue 7's
leftovers: they did not go through the user document's lanes, so on Firestore a
placement, which reads the user document, and an open, which rewrites it, fought inside
one process)."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

import httpx

from cogmora.domain.enums import Market, Side, TriggerOp, TriggerStatus
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.errors import Conflict, NotFound, ValidationError
from cogmora.services.idempotency import IdempotencyKey

if TYPE_CHECKING:
    from conftest import LiveServer

USERS = 5
CLIENTS = 16
PLACEMENTS = 40
OPENS = 10
TRIGGER = {
    "symbol": "XBTUSDTM",
    "market": "futures",
    "condition": {"op": "below", "price": "2500"},
    "action": {"side": "long", "qty": "0.01", "leverage": "10"},
}
OPEN = {"symbol": "XBTUSDTM", "market": "futures", "side": "long", "qty": "0.01", "leverage": "10"}
CONDITION = TriggerCondition(TriggerOp.BELOW, D("2500"))
ACTION = TriggerAction(Side.LONG, D("0.01"), None, D(10))


async def test_16_clients_place_and_cancel_40_triggers_over_5_users_beside_opens_none_lost(
    live_server: LiveServer, make_user: Any, quote: Any
) -> None:
    """Every placement answers 201 and its cancel 200 while opens of the same users run,
    no request answers 5xx, and each user's stored cancelled triggers are exactly the ones
    it placed; the opens' money is untouched by the triggers' batches."""
    quote("XBTUSDTM", "3000")
    clients: list[httpx.AsyncClient] = []
    for u in range(USERS):
        _, token = await make_user(f"t{u}", "10000")
        clients.append(live_server.client(token))
    placements = iter(range(PLACEMENTS))
    opens = iter(range(OPENS))
    codes: Counter[str] = Counter()
    placed: dict[int, set[str]] = {u: set() for u in range(USERS)}

    async def placer() -> None:
        for k in placements:
            u = k % USERS
            r = await clients[u].post("/v1/triggers", json=TRIGGER)
            codes[f"place {r.status_code}"] += 1
            if r.status_code == 201:
                tid = r.json()["id"]
                placed[u].add(tid)
                r = await clients[u].delete(f"/v1/triggers/{tid}")
                codes[f"cancel {r.status_code}"] += 1

    async def opener() -> None:
        for k in opens:
            r = await clients[k % USERS].post("/v1/positions", json=OPEN)
            codes[f"open {r.status_code}"] += 1

    try:
        await asyncio.gather(*(placer() for _ in range(CLIENTS - 2)), opener(), opener())
        assert codes == {"place 201": PLACEMENTS, "cancel 200": PLACEMENTS, "open 201": OPENS}
        for u, client in enumerate(clients):
            stored = (await client.get("/v1/triggers", params={"status": "cancelled"})).json()
            assert {t["id"] for t in stored} == placed[u]
            assert (await client.get("/v1/triggers", params={"status": "active"})).json() == []
            balance = D((await client.get("/v1/account")).json()["balance"])
            assert balance == D("10000") - (OPENS // USERS) * (D(3) + D("0.018"))
    finally:
        for client in clients:
            await client.aclose()


async def test_a_trigger_cancelled_by_several_callers_at_once_is_cancelled_once(
    system: Any, make_user: Any, quote: Any
) -> None:
    """Five cancels of one trigger and one of another, at once: the other is cancelled,
    and of the five exactly one succeeds while four are refused as not active."""
    await make_user("erin", "10000")
    quote("XBTUSDTM", "3000")
    triggers = system.triggers
    one = await triggers.create("erin", "XBTUSDTM", Market.FUTURES, CONDITION, ACTION)
    other = await triggers.create("erin", "XBTUSDTM", Market.FUTURES, CONDITION, ACTION)
    got = await asyncio.gather(
        *(triggers.cancel("erin", one["id"]) for _ in range(5)),
        triggers.cancel("erin", other["id"]),
        return_exceptions=True,
    )
    assert sum(isinstance(g, Conflict) for g in got[:5]) == 4
    assert [g["details"]["status"] for g in got if isinstance(g, dict)] == ["cancelled"] * 2
    statuses = {t.id: t.status for t in await triggers.list_for_user("erin")}
    assert statuses == {one["id"]: TriggerStatus.CANCELLED, other["id"]: TriggerStatus.CANCELLED}


async def test_placements_at_once_with_keys_place_one_trigger_per_key_and_refuse_a_reused_key(
    system: Any, make_user: Any, quote: Any
) -> None:
    """Placements of one user sent together: three with one Idempotency-Key place one
    trigger (three equal answers), one reusing a key for another body is refused with
    nothing written for it, and one without a key is placed beside them."""
    await make_user("finn", "10000")
    quote("XBTUSDTM", "3000")
    same = IdempotencyKey.of("finn", "k-1", "POST /v1/triggers", {"n": 1})
    reused = IdempotencyKey.of("finn", "k-1", "POST /v1/triggers", {"n": 2})

    def place(key: IdempotencyKey | None) -> Any:
        return system.triggers.create(
            "finn", "XBTUSDTM", Market.FUTURES, CONDITION, ACTION, key=key
        )

    got = await asyncio.gather(
        place(same), place(same), place(None), place(same), place(reused),
        return_exceptions=True,
    )
    assert isinstance(got[4], ValidationError)
    assert len({got[0]["id"], got[1]["id"], got[3]["id"]}) == 1
    stored = {t.id for t in await system.triggers.list_for_user("finn")}
    assert stored == {got[0]["id"], got[2]["id"]}


async def test_placements_for_an_unknown_user_are_refused_and_write_nothing(
    system: Any, quote: Any
) -> None:
    """Three placements at once for a user that does not exist: each is NotFound."""
    quote("XBTUSDTM", "3000")
    got = await asyncio.gather(
        *(
            system.triggers.create("ghost", "XBTUSDTM", Market.FUTURES, CONDITION, ACTION)
            for _ in range(3)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(g, NotFound) for g in got)
    assert await system.triggers.list_for_user("ghost") == []

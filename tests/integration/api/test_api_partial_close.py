"""Partial closes over real HTTP (SPEC 5.2): `POST /v1/positions/{id}/close {qty}`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

import httpx

from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote
from cogmora.services.symbols import SymbolSpec

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]
FUT = {"symbol": "XBTUSDTM", "market": "futures", "side": "long", "leverage": 10}


async def client_for(live_server: LiveServer, make_user: Any, uid: str) -> httpx.AsyncClient:
    _, token = await make_user(uid, "10000")
    return live_server.client(token)


async def test_a_partial_close_settles_its_share_and_leaves_the_rest_open(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Closing 0.5 of 2 at 3150: a history document of its own (partOf), a quarter of
    the margin and fee back with the gain, the open part keeps id, entry and liquidation."""
    quote("XBTUSDTM", "3000")
    async with await client_for(live_server, make_user, "alice") as c:
        opened = (await c.post("/v1/positions", json={**FUT, "qty": "2"})).json()
        pid = opened["id"]
        quote("XBTUSDTM", "3150")
        r = await c.post(f"/v1/positions/{pid}/close", json={"qty": "0.5"})
        assert r.status_code == 202, r.text
        doc = r.json()
        assert (doc["id"], doc["qty"], doc["margin"], doc["feeOpen"]) == (
            pid,
            "1.50000000",
            "450.00000000",
            "2.70000000",
        )
        assert doc["details"]["status"] == "open"
        assert doc["entryPrice"] == opened["entryPrice"]
        assert doc["details"]["liquidationPrice"] == opened["details"]["liquidationPrice"]
        part = doc["closedPart"]
        assert (part["id"], part["partOf"], part["qty"], part["closeReason"]) == (
            f"{pid}-1",
            pid,
            "0.50000000",
            "manual",
        )
        # payout 150 + 75 - 0.945 fee; pnl = payout - 150 margin - 0.9 open fee
        assert (part["payout"], part["realizedPnl"]) == ("224.05500000", "73.15500000")
        history = (await c.get("/v1/history")).json()
        assert [h["id"] for h in history] == [f"{pid}-1"]
        ledger = (await c.get("/v1/ledger")).json()
        assert [(e["kind"], e["amount"]) for e in ledger][-2:] == [
            ("close", "225.00000000"),
            ("fee", "-0.94500000"),
        ]
        balance = (await c.get("/v1/account")).json()["balance"]
        assert D(balance) == sum(D(e["amount"]) for e in ledger)


async def test_a_retried_partial_close_with_its_key_closes_once(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """The same Idempotency-Key answers the first 202 again and settles nothing more."""
    quote("XBTUSDTM", "3000")
    async with await client_for(live_server, make_user, "bob") as c:
        pid = (await c.post("/v1/positions", json={**FUT, "qty": "2"})).json()["id"]
        h = {"Idempotency-Key": "part-1"}
        first = await c.post(f"/v1/positions/{pid}/close", json={"qty": "1"}, headers=h)
        again = await c.post(f"/v1/positions/{pid}/close", json={"qty": "1"}, headers=h)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json() == first.json()
        assert len((await c.get("/v1/history")).json()) == 1
        assert (await c.get(f"/v1/positions/{pid}")).json()["qty"] == "1.00000000"


async def test_partial_close_qty_rules_are_422_naming_qty(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """qty must be positive, at most the open qty, at least the minimum size, and leave 0
    or at least the minimum size open."""
    live_server.system.catalog.load(
        Market.FUTURES, {"XBTUSDTM": SymbolSpec(D("0.1"), D("0.1"), D("3000"))}
    )
    quote("XBTUSDTM", "3000")
    async with await client_for(live_server, make_user, "carol") as c:
        pid = (await c.post("/v1/positions", json={**FUT, "qty": "2"})).json()["id"]
        cases = {
            "0": "qty must be greater than 0",
            "3": "qty must be at most the open qty 2.00000000",
            "0.05": "qty must be at least the minimum size 0.1 of XBTUSDTM",
            "1.95": "qty must leave 0 or at least the minimum size 0.1 of XBTUSDTM open",
        }
        for qty, message in cases.items():
            r = await c.post(f"/v1/positions/{pid}/close", json={"qty": qty})
            assert r.status_code == 422, (qty, r.text)
            assert message in r.text, (qty, r.text)
        assert (await c.get(f"/v1/positions/{pid}")).json()["qty"] == "2.00000000"
        full = await c.post(f"/v1/positions/{pid}/close", json={"qty": "2"})
        assert (full.status_code, full.json()["details"]["status"]) == (202, "closing")


async def test_a_ladder_opens_through_the_api_and_its_rules_are_422_naming_the_leg(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """takeProfits opens with the legs stored; falling legs for a long, fractions over 1,
    a leg behind the entry and one with takeProfit are refused naming the field."""
    quote("XBTUSDTM", "3000")
    async with await client_for(live_server, make_user, "dana") as c:
        legs = [{"price": "3100", "fraction": "0.5"}, {"price": "3200", "fraction": "0.5"}]
        r = await c.post(
            "/v1/positions",
            json={**FUT, "qty": "2", "takeProfits": legs, "moveStopToEntryAfter": 1},
        )
        assert r.status_code == 201, r.text
        details = r.json()["details"]
        assert details["takeProfits"] == [
            {"price": "3100.00000000", "fraction": "0.50000000"},
            {"price": "3200.00000000", "fraction": "0.50000000"},
        ]
        assert (details["legsFilled"], details["originalQty"]) == ([], "2.00000000")
        cases = [
            (list(reversed(legs)), "takeProfits[1].price must be above takeProfits[0].price "
             "for a long"),
            ([{"price": "3100", "fraction": "0.7"}, {"price": "3200", "fraction": "0.5"}],
             "takeProfits fractions must sum to at most 1"),
            ([{"price": "2900", "fraction": "0.5"}],
             "takeProfits[0].price must be above the entry price for a long"),
            ([{"price": "3100", "fraction": "0"}],
             "takeProfits[0].fraction must be greater than 0"),
        ]
        for ladder, message in cases:
            r = await c.post("/v1/positions", json={**FUT, "qty": "2", "takeProfits": ladder})
            assert r.status_code == 422, (ladder, r.text)
            assert message in r.text, (message, r.text)
        r = await c.post(
            "/v1/positions",
            json={**FUT, "qty": "2", "takeProfits": legs, "takeProfit": "3300"},
        )
        assert r.status_code == 422 and "takeProfits and takeProfit" in r.text


async def test_patching_a_ladder_keeps_its_filled_legs_and_moves_the_rest(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """After leg 0 fills, a PATCH may move leg 1 (checked against the current price) but
    not leg 0; the book's next crossing of the old leg 1 level is judged against the new."""
    from cogmora.domain.enums import CloseReason
    from cogmora.domain.takeprofits import leg_key
    from cogmora.services.crossings import PositionHit, apply_crossings

    system = live_server.system
    quote("XBTUSDTM", "3000")
    async with await client_for(live_server, make_user, "ella") as c:
        legs = [{"price": "3100", "fraction": "0.5"}, {"price": "3200", "fraction": "0.5"}]
        pid = (await c.post("/v1/positions", json={**FUT, "qty": "2", "takeProfits": legs})).json()[
            "id"
        ]
        hit = PositionHit("ella", leg_key(pid, 0), CloseReason.TAKE_PROFIT, D("3100"), D("3100"))
        fees, now = system.settings.fees, system.clock.now()
        await system.store.transact(lambda tx: apply_crossings(tx, [hit], [], fees, now))
        quote("XBTUSDTM", "3150")
        moved = [legs[0], {"price": "3300", "fraction": "0.5"}]
        r = await c.patch(f"/v1/positions/{pid}", json={"takeProfits": moved})
        assert r.status_code == 200, r.text
        assert r.json()["details"]["takeProfits"][1]["price"] == "3300.00000000"
        changed = [{"price": "3120", "fraction": "0.5"}, moved[1]]
        r = await c.patch(f"/v1/positions/{pid}", json={"takeProfits": changed})
        assert (r.status_code, "takeProfits[0] has filled and cannot change" in r.text) == (
            422, True
        )
        behind = [legs[0], {"price": "3140", "fraction": "0.5"}]
        r = await c.patch(f"/v1/positions/{pid}", json={"takeProfits": behind})
        assert r.status_code == 422
        assert "takeProfits[1].price must be above the current price for a long" in r.text
        stale = PositionHit("ella", leg_key(pid, 1), CloseReason.TAKE_PROFIT, D("3210"), D("3200"))
        out = await system.store.transact(lambda tx: apply_crossings(tx, [stale], [], fees, now))
        assert (out.closing, out.rejudged) == ([], 1)
        assert (await c.get(f"/v1/positions/{pid}")).json()["details"]["status"] == "open"
